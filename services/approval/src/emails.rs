//! The texts of the emails this service requests, in Spanish. The API key
//! appears only as `{secret}`: the notifier opens the sealed key and puts it
//! there at send time, so the key is never in clear text in Kafka.

/// Subject and body of the credentials email.
pub fn credentials(full_name: &str, public_url: &str) -> (String, String) {
    let subject = "MAMOCHI: su inscripción fue aprobada".to_string();
    let body = format!(
        "Hola {full_name}:\n\n\
         Su inscripción en MAMOCHI fue aprobada. Su clave de API es:\n\n    {{secret}}\n\n\
         Úsela en cada llamada a la API del gremio, en el encabezado\n\n    Authorization: Bearer {{secret}}\n\n\
         Por ejemplo, para registrar una venta:\n\n    \
         curl -X POST {public_url}/v1/sales \\\n      \
         -H 'Authorization: Bearer {{secret}}' \\\n      \
         -H 'Content-Type: application/json' \\\n      \
         -d '{{\"quantity\": 1, \"unit_price_clp\": 1500, \"payment_method\": \"cash\"}}'\n\n\
         y para ver su carro y su stock: curl {public_url}/v1/me -H 'Authorization: Bearer {{secret}}'\n\n\
         Guarde esta clave en un lugar seguro: por seguridad no la volveremos a enviar.\n\n\
         Gremio de Maestros Motehuesilleros de Chile (MAMOCHI)\n"
    );
    (subject, body)
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
