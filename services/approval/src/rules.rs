//! The approval rules, as a pure function of the form and what the database
//! already holds about the same person or cart.
//!
//! - Rejected: the RUT's check digit is wrong; a member already has this RUT
//!   or email; another form with this RUT or email, submitted earlier, is
//!   still pending; a paid form has no payment reference.
//! - Manual review (staff decide through the admin API): the cart plate
//!   already belongs to a member (a cart changing hands), or the phone is a
//!   member's (two people sharing one phone, or one person registering twice).
//! - Approved: everything else.
//!
//! The RUT's check digit is the guild's one rule (mamochi-rules), the same
//! the gateway applies when the form arrives.

/// What the database says about the form's RUT, email, plate and phone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conflicts {
    pub member_with_rut: bool,
    pub member_with_email: bool,
    pub earlier_pending_with_rut_or_email: bool,
    pub member_with_plate: bool,
    pub member_with_phone: bool,
}

/// The fields the rules look at.
#[derive(Debug, Clone, Copy)]
pub struct Form<'a> {
    pub rut: &'a str,
    pub paid: bool,
    pub payment_reference: Option<&'a str>,
}

/// The outcome, with a reason a person can read (sent to the applicant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approved,
    Rejected(String),
    ManualReview(String),
}

pub fn decide(form: Form<'_>, conflicts: Conflicts) -> Decision {
    if !mamochi_rules::rut::check_digit_ok(form.rut) {
        return Decision::Rejected("el RUT no es válido (dígito verificador incorrecto)".into());
    }
    if form.paid && form.payment_reference.is_none_or(|reference| reference.trim().is_empty()) {
        return Decision::Rejected("la solicitud pagada no trae referencia de pago".into());
    }
    if conflicts.member_with_rut {
        return Decision::Rejected("ya existe un socio con este RUT".into());
    }
    if conflicts.member_with_email {
        return Decision::Rejected("ya existe un socio con este correo".into());
    }
    if conflicts.earlier_pending_with_rut_or_email {
        return Decision::Rejected("ya hay una solicitud pendiente con este RUT o correo".into());
    }
    if conflicts.member_with_plate {
        return Decision::ManualReview("la patente del carro ya pertenece a un socio".into());
    }
    if conflicts.member_with_phone {
        return Decision::ManualReview("el teléfono ya pertenece a un socio".into());
    }
    Decision::Approved
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(rut: &str) -> Form<'_> {
        Form { rut, paid: false, payment_reference: None }
    }

    #[test]
    fn a_clean_form_is_approved() {
        assert_eq!(decide(form("12345678-5"), Conflicts::default()), Decision::Approved);
    }

    #[test]
    fn duplicates_of_members_or_earlier_forms_are_rejected() {
        for conflicts in [
            Conflicts { member_with_rut: true, ..Conflicts::default() },
            Conflicts { member_with_email: true, ..Conflicts::default() },
            Conflicts { earlier_pending_with_rut_or_email: true, ..Conflicts::default() },
        ] {
            assert!(matches!(decide(form("12345678-5"), conflicts), Decision::Rejected(_)), "{conflicts:?}");
        }
    }

    #[test]
    fn a_known_plate_or_phone_goes_to_manual_review() {
        let plate = Conflicts { member_with_plate: true, ..Conflicts::default() };
        let phone = Conflicts { member_with_phone: true, ..Conflicts::default() };
        assert!(matches!(decide(form("12345678-5"), plate), Decision::ManualReview(_)));
        assert!(matches!(decide(form("12345678-5"), phone), Decision::ManualReview(_)));
    }

    #[test]
    fn a_paid_form_needs_a_payment_reference_and_a_bad_rut_is_rejected() {
        let paid = Form { rut: "12345678-5", paid: true, payment_reference: Some(" ") };
        assert!(matches!(decide(paid, Conflicts::default()), Decision::Rejected(_)));
        assert!(matches!(decide(form("12345678-9"), Conflicts::default()), Decision::Rejected(_)));
    }
}
