# shellcheck shell=bash
# make_pki DIR: a throwaway PKI for demos and benchmarks (the Rust tests make theirs with rcgen):
# ca.crt, server.{crt,key} for localhost/127.0.0.1, client.{crt,key} for
# spiffe://cluster.local/ns/demo/sa/app, and *.pem (certificate + key) for haproxy.
make_pki() {
  local dir=$1
  (
    cd "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
      -subj /CN=warren-throwaway-ca -keyout ca.key -out ca.crt 2>/dev/null
    issue() { # name, subjectAltName, extendedKeyUsage
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
        -keyout "$1.key" -out "$1.csr" 2>/dev/null
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out "$1.crt" \
        -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=%s\n' "$2" "$3") 2>/dev/null
      cat "$1.crt" "$1.key" > "$1.pem"
    }
    issue server "DNS:localhost,IP:127.0.0.1,IP:10.77.0.2" serverAuth
    issue client "URI:spiffe://cluster.local/ns/demo/sa/app" clientAuth
  )
}
