# deploy/local/secure.sh: the secure mode of deploy/local/stack (sourced by it
# when `--secure` is given or MAMOCHI_SECURE=1).
#
# What it adds to the plain stack:
# - a certificate authority and one server certificate (127.0.0.1, localhost)
#   made with openssl under $STATE/tls, and random passwords under
#   $STATE/secrets (mode 0700; made once, kept across restarts);
# - Kafka with TLS on every listener: clients and brokers on SASL_SSL with
#   SCRAM-SHA-512 (users created at format time), the controller listener on
#   SASL_SSL with PLAIN for the stack's admin only; the StandardAuthorizer
#   with `admin` as the only super user and ACLs (below) for one principal
#   per service;
# - PostgreSQL with ssl=on and pg_hba `hostssl` only, so TCP clients without
#   TLS are refused; clients use sslmode=verify-full with the CA;
# - the schema registry with HTTP basic auth (`registry.basic_auth_users`).
#
# The topic ownership behind the ACLs follows services/events/src/topics.rs
# and the services that produce and consume each topic; docs/security.md
# prints the same table.

SECURE_SERVICES=(gateway approval distributor accounting notifier registry)
TLS_DIR=$STATE/tls
SECRETS_DIR=$STATE/secrets
KAFKA_ADMIN_CONFIG=$TLS_DIR/admin-client.properties

# secret NAME: a random password kept in $SECRETS_DIR/NAME, made on first use.
secret() {
    local file=$SECRETS_DIR/$1
    if [[ ! -s "$file" ]]; then
        mkdir -p "$SECRETS_DIR" && chmod 700 "$SECRETS_DIR"
        (umask 077 && openssl rand -hex 24 >"$file")
    fi
    cat "$file"
}

# The CA, the server certificate (PEM for PostgreSQL, PKCS#12 for Kafka) and
# the admin's client properties for Kafka's tools. Made once.
secure_prepare() {
    command -v openssl >/dev/null || die "openssl is not installed (run deploy/local/prereqs)"
    mkdir -p "$TLS_DIR"
    local password
    password=$(secret keystore)
    if [[ ! -f "$TLS_DIR/ca.pem" ]]; then
        log "making a CA and a server certificate in $TLS_DIR"
        openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=MAMOCHI local CA" \
            -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.pem" 2>/dev/null || die "openssl could not make the CA"
        openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
            -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" 2>/dev/null || die "openssl could not make the server key"
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$TLS_DIR/server.ext"
        openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" -CAcreateserial \
            -days 825 -extfile "$TLS_DIR/server.ext" -out "$TLS_DIR/server.pem" 2>/dev/null \
            || die "openssl could not sign the server certificate"
        openssl pkcs12 -export -in "$TLS_DIR/server.pem" -inkey "$TLS_DIR/server.key" -certfile "$TLS_DIR/ca.pem" \
            -name kafka -passout "pass:$password" -out "$TLS_DIR/kafka.p12" || die "openssl could not make the keystore"
        chmod 600 "$TLS_DIR"/*.key "$TLS_DIR/kafka.p12"
    fi
    cat >"$KAFKA_ADMIN_CONFIG" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(secret admin)";
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.pem
EOF
    chmod 600 "$KAFKA_ADMIN_CONFIG"
}

# Appended to a node's server.properties: later keys override the plain ones.
secure_kafka_config() { # secure_kafka_config NODE
    local node=$1 admin_password
    admin_password=$(secret admin)
    cat <<EOF

# Secure mode (deploy/local/secure.sh): TLS everywhere, SCRAM for clients and
# brokers, PLAIN for the controller quorum (KRaft cannot use SCRAM there).
listeners=CLIENT://127.0.0.1:$(kafka_port "$node"),CONTROLLER://127.0.0.1:$((CONTROLLER_FIRST_PORT + node - 1))
advertised.listeners=CLIENT://127.0.0.1:$(kafka_port "$node")
inter.broker.listener.name=CLIENT
listener.security.protocol.map=CLIENT:SASL_SSL,CONTROLLER:SASL_SSL
listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_password";
listener.name.controller.sasl.enabled.mechanisms=PLAIN
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin_password" user_admin="$admin_password";
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS_DIR/kafka.p12
ssl.keystore.password=$(secret keystore)
ssl.key.password=$(secret keystore)
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.pem
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
EOF
}

# SCRAM users written into the metadata log when the storage is formatted.
secure_format_args() {
    local user
    printf '%s\n' --add-scram "SCRAM-SHA-512=[name=admin,password=$(secret admin)]"
    for user in "${SECURE_SERVICES[@]}"; do
        printf '%s\n' --add-scram "SCRAM-SHA-512=[name=$user,password=$(secret "kafka-$user")]"
    done
}

# The ACL table: PRINCIPAL OPERATION RESOURCE-TYPE PATTERN NAME.
# Topics are literal; groups are prefixed by the service's group names
# (e.g. `approval` covers `approval` and `approval-reviews`); `txn` is a
# transactional id (the registry's writer fences its predecessor with one,
# services/registry/src/election.rs names it and the election topic).
secure_acl_table() {
    cat <<'EOF'
gateway     Write topic    literal  mamochi.registrations
gateway     Write topic    literal  mamochi.registration-reviews
gateway     Write topic    literal  mamochi.sales
gateway     Write topic    literal  mamochi.stock
gateway     Read  topic    literal  mamochi.cart-stock
gateway     Write topic    literal  mamochi.cart-tracking
gateway     Read  topic    literal  mamochi.cart-tracking
gateway     Read  group    prefixed gateway-
approval    Read  topic    literal  mamochi.registrations
approval    Read  topic    literal  mamochi.registration-reviews
approval    Write topic    literal  mamochi.registration-decisions
approval    Write topic    literal  mamochi.credentials
approval    Write topic    literal  mamochi.email-requests
approval    Write topic    literal  mamochi.dead-letters
approval    Read  group    prefixed approval
distributor Read  topic    literal  mamochi.sales
distributor Read  topic    literal  mamochi.stock
distributor Read  topic    literal  mamochi.cart-tracking
distributor Write topic    literal  mamochi.stock
distributor Write topic    literal  mamochi.cart-stock
distributor Write topic    literal  mamochi.cart-alarms
distributor Write topic    literal  mamochi.email-requests
distributor Write topic    literal  mamochi.dead-letters
distributor Read  group    prefixed distributor
accounting  Read  topic    literal  mamochi.sales
accounting  Write topic    literal  mamochi.statements
accounting  Write topic    literal  mamochi.email-requests
accounting  Write topic    literal  mamochi.dead-letters
accounting  Read  group    prefixed accounting
notifier    Read  topic    literal  mamochi.email-requests
notifier    Write topic    literal  mamochi.dead-letters
notifier    Read  group    prefixed notifier
registry    Read  topic    literal  _schemas
registry    Write topic    literal  _schemas
registry    Read  topic    literal  _schemas-writer
registry    Write topic    literal  _schemas-writer
registry    Read  group    prefixed mamochi-registry-
registry    Write txn      literal  mamochi-registry-writer-_schemas
EOF
}

# Applies the ACL table (kafka-acls is idempotent: an existing ACL is kept).
secure_acls() {
    local principal operation kind pattern name args=()
    while read -r principal operation kind pattern name; do
        [[ -n "$principal" ]] || continue
        args=(--bootstrap-server "$(bootstrap_servers)" --command-config "$KAFKA_ADMIN_CONFIG" --add
            --allow-principal "User:$principal" --operation "$operation" --resource-pattern-type "$pattern")
        case $kind in
            topic) args+=(--topic "$name") ;;
            group) args+=(--group "$name") ;;
            txn) args+=(--transactional-id "$name") ;;
        esac
        kafka_java "$HERE/kafka/tools-log4j2.properties" org.apache.kafka.tools.AclCommand "${args[@]}" >>"$LOGS/acls.log" 2>&1 \
            || die "adding an ACL failed ($principal $operation $kind $name; see $LOGS/acls.log)"
    done < <(secure_acl_table)
    log "ACLs in place for ${SECURE_SERVICES[*]}"
}

# PostgreSQL: the server certificate in the data directory, TCP only over TLS.
secure_postgres_prepare() { # secure_postgres_prepare DATA_DIR
    local data=$1
    cp "$TLS_DIR/server.pem" "$data/server.crt"
    cp "$TLS_DIR/server.key" "$data/server.key"
    chmod 600 "$data/server.key"
    [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$data/server.crt" "$data/server.key"
    cat >"$data/pg_hba.conf" <<EOF
# Secure mode (deploy/local/secure.sh): the stack's own socket is trusted;
# TCP only over TLS, with a password.
local   all all                 trust
hostssl all all 127.0.0.1/32    scram-sha-256
hostssl all all ::1/128         scram-sha-256
EOF
    [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$data/pg_hba.conf"
    return 0
}

secure_postgres_options() { echo "-c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key"; }

secure_database_query() { echo "?sslmode=verify-full&sslrootcert=$TLS_DIR/ca.pem"; }

secure_registry_user() { echo "platform:$(secret registry-platform)"; }

# The settings every platform process reads in secure mode: the default
# Kafka principal is the admin (tools, `mamochi topics`, tests), and each
# service has its own under kafka.principals. The services' own ports move
# with the stack's (API 8180, operations 9200-9204), so a platform on the
# secure stack runs beside one on the plain stack.
secure_print_env() {
    local user upper
    cat <<EOF
export MAMOCHI__KAFKA__SECURITY_PROTOCOL='sasl_ssl'
export MAMOCHI__KAFKA__SASL_MECHANISM='SCRAM-SHA-512'
export MAMOCHI__KAFKA__SSL_CA_LOCATION='$TLS_DIR/ca.pem'
export MAMOCHI__KAFKA__SASL_USERNAME='admin'
export MAMOCHI__KAFKA__SASL_PASSWORD='$(secret admin)'
export MAMOCHI__REGISTRY__URL='http://$(secure_registry_user)@127.0.0.1:$REGISTRY_PORT'
export MAMOCHI__REGISTRY__BASIC_AUTH_USERS='$(secure_registry_user)'
export MAMOCHI_SECURE_CA='$TLS_DIR/ca.pem'
export MAMOCHI__GATEWAY__LISTEN='127.0.0.1:$((8080 + PORT_SHIFT))'
export MAMOCHI__GATEWAY__PUBLIC_URL='http://127.0.0.1:$((8080 + PORT_SHIFT))'
export MAMOCHI__GATEWAY__OPS_LISTEN='127.0.0.1:$((9100 + PORT_SHIFT))'
export MAMOCHI__APPROVAL__OPS_LISTEN='127.0.0.1:$((9101 + PORT_SHIFT))'
export MAMOCHI__DISTRIBUTOR__OPS_LISTEN='127.0.0.1:$((9102 + PORT_SHIFT))'
export MAMOCHI__ACCOUNTING__OPS_LISTEN='127.0.0.1:$((9103 + PORT_SHIFT))'
export MAMOCHI__NOTIFIER__OPS_LISTEN='127.0.0.1:$((9104 + PORT_SHIFT))'
EOF
    for user in "${SECURE_SERVICES[@]}"; do
        upper=${user^^}
        echo "export MAMOCHI__KAFKA__PRINCIPALS__${upper}__USERNAME='$user'"
        echo "export MAMOCHI__KAFKA__PRINCIPALS__${upper}__PASSWORD='$(secret "kafka-$user")'"
    done
}

# Arguments that make one of Kafka's tools log in as the admin.
secure_tool_args() { # secure_tool_args TOOL
    case $1 in
        console-consumer) printf '%s\n' --consumer.config "$KAFKA_ADMIN_CONFIG" ;;
        console-producer) printf '%s\n' --producer.config "$KAFKA_ADMIN_CONFIG" ;;
        producer-perf-test|consumer-perf-test) ;;
        *) printf '%s\n' --command-config "$KAFKA_ADMIN_CONFIG" ;;
    esac
}
