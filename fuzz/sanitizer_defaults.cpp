// Linked into every binary of the sanitizer build (unit tests and fuzzers).
//
// LeakSanitizer: libhdf5 1.10.8 leaves internal allocations behind each time it refuses a
// damaged file (about 400 bytes per refusal, seen in checkpoint_file_test's byte-flip test and
// fuzz_checkpoint). They are not ours to free; every other leak stays fatal.
extern "C" const char* __lsan_default_suppressions() { return "leak:libhdf5_serial.so\n"; }
