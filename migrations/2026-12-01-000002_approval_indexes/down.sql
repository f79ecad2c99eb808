DROP INDEX registrations_pending_by_email;
DROP INDEX registrations_pending_by_rut;
DROP INDEX members_by_phone;
DROP INDEX members_by_cart_plate;
