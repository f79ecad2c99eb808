//! Decides a batch of forms in order, each form seeing the database plus the
//! forms before it in the batch, exactly as if the forms had been decided one
//! at a time.
//!
//! The database look-up of a batch ([`crate::store`]) cannot see the batch's
//! own forms (none of them is decided yet), so this module adds what the
//! earlier forms of the batch would have left behind: an approved form is a
//! member (its RUT, email, plate and phone are taken); a form sent to manual
//! review is a pending form (its RUT and email block forms submitted after
//! it). A rejected form leaves nothing behind, as in the database.
//!
//! Guarantee: for a batch in the order given, the decisions equal those of
//! deciding the same forms one by one in that order with [`rules::decide`].

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::rules::{self, Conflicts, Decision};

/// One form of the batch: what the rules read, and what the database said.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub form: rules::Form<'a>,
    pub email: &'a str,
    pub cart_plate: &'a str,
    pub phone: &'a str,
    pub submitted_at: DateTime<Utc>,
    /// Conflicts with members and pending forms outside the batch.
    pub stored: Conflicts,
}

/// What the forms decided so far in the batch leave behind.
#[derive(Debug, Default)]
struct Earlier<'a> {
    member_ruts: HashSet<&'a str>,
    member_emails: HashSet<&'a str>,
    member_plates: HashSet<&'a str>,
    member_phones: HashSet<&'a str>,
    /// Earliest submission of a pending form, by RUT and by email.
    pending_ruts: HashMap<&'a str, DateTime<Utc>>,
    pending_emails: HashMap<&'a str, DateTime<Utc>>,
}

impl<'a> Earlier<'a> {
    fn conflicts(&self, candidate: &Candidate<'a>) -> Conflicts {
        let pending_before = |seen: &HashMap<&'a str, DateTime<Utc>>, key: &str| {
            seen.get(key).is_some_and(|earliest| *earliest < candidate.submitted_at)
        };
        let stored = candidate.stored;
        Conflicts {
            member_with_rut: stored.member_with_rut || self.member_ruts.contains(candidate.form.rut),
            member_with_email: stored.member_with_email || self.member_emails.contains(candidate.email),
            earlier_pending_with_rut_or_email: stored.earlier_pending_with_rut_or_email
                || pending_before(&self.pending_ruts, candidate.form.rut)
                || pending_before(&self.pending_emails, candidate.email),
            member_with_plate: stored.member_with_plate || self.member_plates.contains(candidate.cart_plate),
            member_with_phone: stored.member_with_phone || self.member_phones.contains(candidate.phone),
        }
    }

    fn record(&mut self, candidate: &Candidate<'a>, decision: &Decision) {
        match decision {
            Decision::Approved => {
                self.member_ruts.insert(candidate.form.rut);
                self.member_emails.insert(candidate.email);
                self.member_plates.insert(candidate.cart_plate);
                self.member_phones.insert(candidate.phone);
            }
            Decision::ManualReview(_) => {
                for (seen, key) in
                    [(&mut self.pending_ruts, candidate.form.rut), (&mut self.pending_emails, candidate.email)]
                {
                    let earliest = seen.entry(key).or_insert(candidate.submitted_at);
                    *earliest = (*earliest).min(candidate.submitted_at);
                }
            }
            Decision::Rejected(_) => {}
        }
    }
}

/// Decides `candidates` in order; one decision per candidate, same order.
pub fn decide_in_order(candidates: &[Candidate<'_>]) -> Vec<Decision> {
    let mut earlier = Earlier::default();
    candidates
        .iter()
        .map(|candidate| {
            let decision = rules::decide(candidate.form, earlier.conflicts(candidate));
            earlier.record(candidate, &decision);
            decision
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate<'a>(rut: &'a str, email: &'a str, plate: &'a str, phone: &'a str, second: i64) -> Candidate<'a> {
        Candidate {
            form: rules::Form { rut, paid: false, payment_reference: None },
            email,
            cart_plate: plate,
            phone,
            submitted_at: DateTime::from_timestamp(1_800_000_000 + second, 0).expect("timestamp"),
            stored: Conflicts::default(),
        }
    }

    fn one_by_one(candidates: &[Candidate<'_>]) -> Vec<Decision> {
        // The reference: each form alone, with the conflicts earlier ones
        // would have stored, computed without the batch bookkeeping.
        let mut decided: Vec<(Candidate<'_>, Decision)> = Vec::new();
        for candidate in candidates {
            let members = || decided.iter().filter(|(_, decision)| *decision == Decision::Approved).map(|(c, _)| c);
            let conflicts = Conflicts {
                member_with_rut: members().any(|m| m.form.rut == candidate.form.rut),
                member_with_email: members().any(|m| m.email == candidate.email),
                earlier_pending_with_rut_or_email: decided.iter().any(|(c, decision)| {
                    matches!(decision, Decision::ManualReview(_))
                        && (c.form.rut == candidate.form.rut || c.email == candidate.email)
                        && c.submitted_at < candidate.submitted_at
                }),
                member_with_plate: members().any(|m| m.cart_plate == candidate.cart_plate),
                member_with_phone: members().any(|m| m.phone == candidate.phone),
            };
            decided.push((candidate.clone(), rules::decide(candidate.form, conflicts)));
        }
        decided.into_iter().map(|(_, decision)| decision).collect()
    }

    #[test]
    fn the_first_of_two_forms_with_one_rut_is_decided_as_if_alone_and_the_second_is_its_duplicate() {
        let batch = [
            candidate("12345678-5", "a@x.cl", "BBBB10", "+56911111111", 1),
            candidate("12345678-5", "b@x.cl", "CCCC10", "+56922222222", 2),
        ];
        let decisions = decide_in_order(&batch);
        assert_eq!(decisions[0], Decision::Approved);
        assert!(matches!(&decisions[1], Decision::Rejected(reason) if reason.contains("RUT")), "{decisions:?}");
    }

    #[test]
    fn later_forms_see_earlier_emails_plates_and_phones() {
        let batch = [
            candidate("12345678-5", "a@x.cl", "BBBB10", "+56911111111", 1),
            candidate("11111111-1", "a@x.cl", "CCCC10", "+56922222222", 2),
            candidate("10000013-K", "c@x.cl", "BBBB10", "+56933333333", 3),
            candidate("22222222-2", "d@x.cl", "DDDD10", "+56911111111", 4),
        ];
        let decisions = decide_in_order(&batch);
        assert_eq!(decisions[0], Decision::Approved);
        assert!(matches!(&decisions[1], Decision::Rejected(reason) if reason.contains("correo")), "{decisions:?}");
        assert!(matches!(&decisions[2], Decision::ManualReview(reason) if reason.contains("patente")), "{decisions:?}");
        assert!(
            matches!(&decisions[3], Decision::ManualReview(reason) if reason.contains("teléfono")),
            "{decisions:?}"
        );
    }

    #[test]
    fn a_pending_form_blocks_only_forms_submitted_after_it_and_a_rejected_one_blocks_nothing() {
        let stored_plate = Conflicts { member_with_plate: true, ..Conflicts::default() };
        let stored_rut = Conflicts { member_with_rut: true, ..Conflicts::default() };
        let mut pending = candidate("12345678-5", "a@x.cl", "BBBB10", "+56911111111", 5);
        pending.stored = stored_plate;
        let mut rejected = candidate("11111111-1", "r@x.cl", "FFFF10", "+56944444444", 1);
        rejected.stored = stored_rut;
        let batch = [
            pending,
            candidate("12345678-5", "b@x.cl", "CCCC10", "+56922222222", 9),
            candidate("12345678-5", "c@x.cl", "DDDD10", "+56933333333", 2),
            rejected,
            candidate("11111111-1", "s@x.cl", "GGGG10", "+56955555555", 3),
        ];
        let decisions = decide_in_order(&batch);
        assert!(matches!(decisions[0], Decision::ManualReview(_)));
        assert!(matches!(&decisions[1], Decision::Rejected(reason) if reason.contains("pendiente")), "{decisions:?}");
        assert_eq!(decisions[2], Decision::Approved, "submitted before the pending form");
        assert!(matches!(decisions[3], Decision::Rejected(_)));
        assert_eq!(decisions[4], Decision::Approved, "a rejected form leaves its RUT free");
    }

    #[test]
    fn a_batch_decides_as_the_forms_one_by_one() {
        // Small pools of values so that collisions of every kind are common.
        let ruts = ["12345678-5", "11111111-1", "10000013-K", "22222222-2", "12345678-9"];
        let emails = ["a@x.cl", "b@x.cl", "c@x.cl", "d@x.cl"];
        let plates = ["BBBB10", "CCCC10", "DDDD10"];
        let phones = ["+56911111111", "+56922222222", "+56933333333"];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        for _ in 0..200 {
            let batch: Vec<_> = (0..12)
                .map(|_| {
                    let second = next(20) as i64;
                    candidate(ruts[next(5)], emails[next(4)], plates[next(3)], phones[next(3)], second)
                })
                .collect();
            assert_eq!(decide_in_order(&batch), one_by_one(&batch), "{batch:?}");
        }
    }
}
