//! The texts of the emails this service requests, in Spanish (the
//! credentials text is shared with the gateway). The API key
//! appears only as `{secret}`: the notifier opens the sealed key and puts it
//! there at send time, so the key is never in clear text in Kafka.

/// Subject and body of the credentials email of a newly approved member
/// (the text is shared with the gateway's re-issue, in
/// [`mamochi_events::credentials`]).
pub fn credentials(full_name: &str, public_url: &str) -> (String, String) {
    mamochi_events::credentials::email_text(mamochi_events::credentials::Occasion::Approved, full_name, public_url)
}

/// Subject and body of the rejection email.
pub fn rejection(full_name: &str, reason: &str) -> (String, String) {
    let subject = "MAMOCHI: su inscripción no fue aprobada".to_string();
    let body = format!(
        "Hola {full_name}:\n\n\
         Su inscripción en MAMOCHI no fue aprobada.\n\nMotivo: {reason}\n\n\
         Si cree que se trata de un error, puede enviar una nueva solicitud o escribirnos respondiendo este correo.\n\n\
         Gremio de Maestros Motehuesilleros de Chile (MAMOCHI)\n"
    );
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credentials_email_explains_how_to_use_the_key_without_containing_it() {
        let (_, body) = credentials("Rosa", "http://api.example");
        assert!(body.contains("Authorization: Bearer {secret}"));
        assert!(body.contains("http://api.example/v1/sales"));
        assert!(!body.contains("mamochi_"), "the key itself is filled in by the notifier");
    }

    #[test]
    fn the_rejection_email_gives_the_reason() {
        let (_, body) = rejection("Rosa", "ya existe un socio con este RUT");
        assert!(body.contains("Motivo: ya existe un socio con este RUT"));
    }
}
