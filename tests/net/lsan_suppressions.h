#pragma once
// LeakSanitizer suppressions for test binaries that do real TLS through cpprestsdk. Include in
// exactly one source file of such a binary.
//
// OpenSSL keeps per-thread state (the ERR_STATE error queue, ~900 bytes, and per-thread
// DRBGs) that is freed only when the thread exits. cpprestsdk's worker threads belong to a
// process-wide pool that outlives main(), so LSan reports that state once per worker thread
// that touched TLS.
//
// cpprestsdk itself leaks a pplx continuation and its stream buffer when a connection fails
// (seen on "connection refused": streambuf_state_manager::close scheduled from
// request_context::report_exception); it is freed by nobody, in any program. Leaks whose
// allocation stack runs through libcpprest are therefore suppressed in both modes.
//
// Precise mode (default): allocation stacks are unwound slowly (libcrypto has no frame
// pointers, so the fast unwinder stops at CRYPTO_zalloc) and only that per-thread state is
// suppressed — our own OpenSSL leaks (e.g. in the HTTPS server) are still reported. It makes
// every malloc much slower, so time-sensitive binaries define KPC_LSAN_COARSE before including
// this, which ignores every leak allocated inside libcrypto instead.

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KPC_LSAN_ACTIVE 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define KPC_LSAN_ACTIVE 1
#endif

#ifdef KPC_LSAN_ACTIVE
#ifdef KPC_LSAN_COARSE
extern "C" __attribute__((used)) const char* __lsan_default_suppressions() { return "leak:libcrypto.so\nleak:libcpprest.so\n"; }
#else
extern "C" __attribute__((used)) const char* __asan_default_options() { return "fast_unwind_on_malloc=0"; }
extern "C" __attribute__((used)) const char* __lsan_default_suppressions() {
  return "leak:ERR_clear_error\nleak:ERR_get_state\nleak:RAND_get0_public\nleak:RAND_get0_private\n"
         "leak:libcpprest.so\n";
}
#endif
#endif
