-- Indexes for the approval rules' look-ups (services/approval/src/store.rs),
-- so deciding a batch of forms costs index probes, not table scans.
--
-- members.rut and members.email are UNIQUE, so they are indexed already.
-- A member's cart plate and phone send a form to manual review:
CREATE INDEX members_by_cart_plate ON members (cart_plate);
CREATE INDEX members_by_phone ON members (phone);

-- "Another form with this RUT or email, submitted earlier, is still pending":
-- only pending forms matter, and they are few next to decided ones.
CREATE INDEX registrations_pending_by_rut ON registrations (rut, submitted_at)
    WHERE status IN ('received', 'manual_review');
CREATE INDEX registrations_pending_by_email ON registrations (email, submitted_at)
    WHERE status IN ('received', 'manual_review');
