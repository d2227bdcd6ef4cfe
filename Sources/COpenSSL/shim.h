#ifndef SLUICE_OPENSSL_SHIM_H
#define SLUICE_OPENSSL_SHIM_H

// Sluice uses libcrypto for every hash, MAC and KDF so that no digest is hand-rolled; libssl is
// linked for the TLS work that will follow. Random bytes come from the kernel (getrandom).
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <sys/random.h>

// The helpers below wrap OpenSSL function-like macros, which Swift cannot import.

static inline long sluice_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return SSL_CTX_set_min_proto_version(ctx, version);
}

static inline long sluice_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) {
    return SSL_CTX_set_max_proto_version(ctx, version);
}

static inline long sluice_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}

static inline void sluice_OPENSSL_free(void *pointer) {
    OPENSSL_free(pointer);
}

#endif
