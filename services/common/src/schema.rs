// @generated automatically by Diesel CLI.

diesel::table! {
    carts (vendor_id) {
        vendor_id -> Uuid,
        stock -> Int4,
        low_stock_alerted -> Bool,
        restocks -> Int4,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    emails (message_id) {
        message_id -> Uuid,
        recipient -> Text,
        subject -> Text,
        category -> Text,
        status -> Text,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        requested_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    members (member_id) {
        member_id -> Uuid,
        registration_id -> Uuid,
        full_name -> Text,
        rut -> Text,
        email -> Text,
        phone -> Text,
        comuna -> Text,
        cart_plate -> Text,
        paid -> Bool,
        api_key_id -> Text,
        api_key_sha256 -> Text,
        created_at -> Timestamptz,
        pending_credentials -> Nullable<Bytea>,
    }
}

diesel::table! {
    processed_events (consumer, event_id) {
        consumer -> Text,
        event_id -> Uuid,
        processed_at -> Timestamptz,
    }
}

diesel::table! {
    registrations (registration_id) {
        registration_id -> Uuid,
        full_name -> Text,
        rut -> Text,
        email -> Text,
        phone -> Text,
        comuna -> Text,
        cart_plate -> Text,
        paid -> Bool,
        payment_reference -> Nullable<Text>,
        tracking_token_sha256 -> Text,
        status -> Text,
        reason -> Nullable<Text>,
        decided_by -> Nullable<Text>,
        member_id -> Nullable<Uuid>,
        submitted_at -> Timestamptz,
        received_at -> Timestamptz,
        decided_at -> Nullable<Timestamptz>,
        published_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    sale_requests (vendor_id, idempotency_key) {
        vendor_id -> Uuid,
        idempotency_key -> Text,
        request_sha256 -> Text,
        sale_id -> Uuid,
        response -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    statements (statement_id) {
        statement_id -> Uuid,
        vendor_id -> Uuid,
        iso_week -> Text,
        sales_count -> Int8,
        units -> Int8,
        earnings_clp -> Int8,
        average_ticket_clp -> Int8,
        issued_at -> Timestamptz,
        published_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    weekly_sales (vendor_id, iso_week) {
        vendor_id -> Uuid,
        iso_week -> Text,
        week_start -> Timestamptz,
        week_end -> Timestamptz,
        sales_count -> Int8,
        units -> Int8,
        earnings_clp -> Int8,
        closed_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(carts -> members (vendor_id));
diesel::joinable!(members -> registrations (registration_id));

diesel::allow_tables_to_appear_in_same_query!(
    carts,
    emails,
    members,
    processed_events,
    registrations,
    sale_requests,
    statements,
    weekly_sales,
);
