/*
 * fuzz.h: the entry point every fuzz target defines.
 *
 * With clang and -fsanitize=fuzzer, libFuzzer calls it with generated
 * inputs; with any compiler, run_corpus.c calls it with the files of the
 * seed corpus and of the kept crash inputs.  It returns 0, and aborts (after
 * saying why on stderr) when an input breaks a rule it checks.
 */
#ifndef MQLOCK_TESTS_FUZZ_H
#define MQLOCK_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
