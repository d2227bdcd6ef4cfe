#ifndef SLUICE_OPENSSL_SHIM_H
#define SLUICE_OPENSSL_SHIM_H

// Sluice uses libcrypto for every hash, MAC and KDF so that no digest is hand-rolled, and libssl for
// TLS on both sides. Random bytes come from the kernel (getrandom).
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
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

static inline long sluice_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_mode(ctx, mode);
}

static inline long sluice_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}

static inline long sluice_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list) {
    return SSL_CTX_set1_groups_list(ctx, list);
}

static inline long sluice_SSL_CTX_set_dh_auto(SSL_CTX *ctx, long on) {
    return SSL_CTX_set_dh_auto(ctx, on);
}

// SSL_OP_* are built with a function-like macro, so Swift sees none of them.
static inline uint64_t sluice_SSL_OP_NO_RENEGOTIATION(void) { return SSL_OP_NO_RENEGOTIATION; }
static inline uint64_t sluice_SSL_OP_NO_COMPRESSION(void) { return SSL_OP_NO_COMPRESSION; }

static inline void sluice_OPENSSL_free(void *pointer) {
    OPENSSL_free(pointer);
}

#endif
