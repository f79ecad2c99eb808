//! The decode step every consumer shares: decode the record into the type the
//! topic promises, or park it in the dead letters and say so.
//!
//! The caller stores the record's offset in both the decoded and the parked
//! case (the record is dealt with); on a transient error it stores nothing and
//! retries, so a registry outage delays records but never drops them.

use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use serde::de::DeserializeOwned;

use crate::codec::{DecodeError, EventCodec};
use crate::dead_letter::DeadLetters;
use crate::AvroSchemaSource;

/// What became of one record.
#[derive(Debug)]
pub enum Decoded<T> {
    /// The value, ready for the handler.
    Event(T),
    /// Undecodable for good; now in the dead-letter topic.
    Parked(DecodeError),
}

/// Why the decode step could not finish; the record must be retried.
#[derive(Debug, thiserror::Error)]
pub enum DecodeStepError {
    #[error("transient decode failure: {0}")]
    Transient(DecodeError),
    #[error("could not write the dead letter: {0}")]
    DeadLetter(#[from] KafkaError),
}

/// Decodes `message`'s value as `T`, parking it when it never will decode.
pub async fn decode_or_park<T>(
    codec: &EventCodec,
    dead_letters: &DeadLetters,
    message: &BorrowedMessage<'_>,
) -> Result<Decoded<T>, DecodeStepError>
where
    T: AvroSchemaSource + DeserializeOwned,
{
    match codec.decode::<T>(message.payload()).await {
        Ok(value) => Ok(Decoded::Event(value)),
        Err(error) if error.is_transient() => Err(DecodeStepError::Transient(error)),
        Err(error) => {
            dead_letters.park(message, error.reason(), &error).await?;
            Ok(Decoded::Parked(error))
        }
    }
}
