#!/usr/bin/env bash
# Writes the TLS test identities to Tests/Fixtures/tls/ with the openssl command line:
#   ca.pem                      a throwaway certificate authority (its key is not kept)
#   server.pem / server.key     a server certificate it signed for 127.0.0.1 and localhost
#   wrong-name.pem / .key       one it signed for another host name only
#   other-ca.pem                an unrelated authority, which vouches for neither
# The tests serve these from a TLS server on 127.0.0.1 and check that libcurl accepts the
# first only when told to trust ca.pem, and never the second. The keys protect nothing:
# they exist only for those tests. Valid for 100 years, so the fixtures do not expire.
set -euo pipefail
out="$(cd "$(dirname "$0")/.." && pwd)/Tests/Fixtures/tls"
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
days=36500
curve=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

authority() { # file name, common name
    openssl req -x509 "${curve[@]}" -keyout "$work/$1.key" -out "$out/$1.pem" -days "$days" \
        -subj "/CN=$2" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
authority ca "triage test CA"
authority other-ca "triage unrelated test CA"

issue() { # name, subjectAltName
    openssl req "${curve[@]}" -keyout "$out/$1.key" -out "$work/$1.csr" -subj "/CN=$1" 2>/dev/null
    printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$2" > "$work/$1.ext"
    openssl x509 -req -in "$work/$1.csr" -CA "$out/ca.pem" -CAkey "$work/ca.key" -CAserial "$work/ca.srl" -CAcreateserial \
        -days "$days" -extfile "$work/$1.ext" -out "$out/$1.pem" 2>/dev/null
}
issue server "IP:127.0.0.1,DNS:localhost"
issue wrong-name "DNS:gateway.invalid"
chmod 644 "$out"/*.key
openssl verify -CAfile "$out/ca.pem" "$out/server.pem" "$out/wrong-name.pem"
