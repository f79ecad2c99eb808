//! The `mamochi` command's subcommands, as a library so that tests can drive
//! them and read what they read (the mailbox of the SMTP sink, say).

pub mod bench_cmd;
pub mod config_cmd;
pub mod dead_letters_cmd;
pub mod demo;
pub mod mailbox;
pub mod retention;
pub mod run;
pub mod schemas;
pub mod staff_cmd;
pub mod topics_cmd;
