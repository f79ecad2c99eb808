-- deploy/local/fuzz/vendor.sql: a vendor of the fuzzer's own, written the way
-- the approval service writes one (an approved registration, the member with
-- the SHA-256 of its API key, a cart), so the fuzzer can call the vendor
-- operations with a valid key. Every value is new at each run (psql
-- variables member_id, registration_id, tag, key_sha256), so runs never
-- collide with each other or with other tests on the shared stack.
BEGIN;
INSERT INTO registrations (registration_id, full_name, rut, email, phone, comuna, cart_plate, paid,
                           tracking_token_sha256, status, submitted_at, decided_at)
VALUES (:'registration_id', 'Fuzz Vendor', 'fuzz-' || :'tag', 'fuzz.' || :'tag' || '@example.cl', '+56912345678',
        'Ñuñoa', 'BCDF12', false, repeat('0', 64), 'approved', now(), now());
INSERT INTO members (member_id, registration_id, full_name, rut, email, phone, comuna, cart_plate, paid,
                     api_key_id, api_key_sha256)
VALUES (:'member_id', :'registration_id', 'Fuzz Vendor', 'fuzz-' || :'tag', 'fuzz.' || :'tag' || '@example.cl',
        '+56912345678', 'Ñuñoa', 'BCDF12', false, 'fuzz-' || :'tag', :'key_sha256');
INSERT INTO carts (vendor_id, stock) VALUES (:'member_id', 1000000);
COMMIT;
