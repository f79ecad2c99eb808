-- A payment reference buys one priority review. The gateway claims a paid
-- form's reference here before it publishes the form; a reference claimed
-- already is refused (409). The primary key is the unique index that makes
-- the rule hold across any number of gateway instances.
--
-- A table of its own rather than a unique index on
-- registrations.payment_reference: the claim must exist before the form is
-- published, and the registrations row is written after that (by the
-- gateway, and from the event by approval, whichever comes first); and a
-- unique index there would make approval's insert of a form that repeats a
-- reference (an event from before this rule, a replay) skip the row and fail
-- the decision.
CREATE TABLE payment_references (
    payment_reference  TEXT        PRIMARY KEY,
    registration_id    UUID        NOT NULL,
    claimed_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- References used before this rule stay used. Where earlier forms repeated
-- one, the earliest form holds it; the later forms are history and stay as
-- they were (registrations is not rewritten).
INSERT INTO payment_references (payment_reference, registration_id, claimed_at)
SELECT DISTINCT ON (payment_reference) payment_reference, registration_id, submitted_at
FROM registrations
WHERE payment_reference IS NOT NULL
ORDER BY payment_reference, submitted_at, registration_id
ON CONFLICT DO NOTHING;
