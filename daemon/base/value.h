/*
 * Checking calls against signatures and converting command-line text into
 * typed values. Pure: no I/O, no logging, fuzzed. Error texts name the
 * function, the parameter and what was wrong, and go to the client as is.
 */
#ifndef AIOD_VALUE_H
#define AIOD_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pbvalue.h"

/* OR'd into value_param.type of the last parameter: it collects the rest
 * of the arguments into a list (AIOD_TYPE_REST). */
#define VALUE_REST 0x100u

/* One declared parameter, as the registry keeps it. */
typedef struct value_param {
    const char *name;
    /* PBVALUE_* type, or for the last one possibly VALUE_REST | item type. */
    uint32_t type;
    /* Parsed default, or NULL when required. */
    Aiod__Value *default_value;
} value_param;

/* A signature: what value_check_call needs to know about a function. */
typedef struct value_sig {
    const char *function;
    const value_param *params;
    size_t n_params;
} value_sig;

/*
 * Converts text to a value of `type`: int (decimal, optional sign; 0x hex),
 * double (strtod syntax, finite), bool (true/false/yes/no/on/off/1/0), string
 * and bytes (as is), null ("null"), list and map (JSON), any (JSON when it
 * parses, else the text as a string). JSON is held to what a value sent
 * as such is: nesting no deeper than LIMIT_VALUE_DEPTH and at most
 * LIMIT_FRAME_VALUES values, checked before it is parsed (text that reads
 * as JSON over them is refused, for `any` too). 0, -EINVAL (why written to
 * `why`), -ENOMEM.
 */
int value_from_text(uint32_t type, const char *text, Aiod__Value **ret, char *why, size_t why_len);

/*
 * Checks a call's arguments against `sig` and builds the full argument
 * vector: one value per parameter, converted from text when `text` is set,
 * defaults filled in. Takes the values in args[0..n) (the array itself stays
 * the caller's; its slots are set to NULL). On success *ret_argv is a new
 * array of sig->n_params new values (NULL when there are no parameters).
 * -EINVAL with a message in `err`, -E2BIG (text that makes more than
 * LIMIT_FRAME_VALUES values; the message in `err`), -ENOMEM.
 */
int value_check_call(const value_sig *sig, Aiod__Value **args, size_t n, bool text,
                     unsigned max_depth, Aiod__Value ***ret_argv, char *err, size_t err_len);

/* As value_check_call, but the arguments are only borrowed (copied as
 * needed): for values that live in a decoded request's arena. */
int value_check_call_borrowed(const value_sig *sig, Aiod__Value *const *args, size_t n, bool text,
                              unsigned max_depth, Aiod__Value ***ret_argv, char *err,
                              size_t err_len);

/*
 * pbvalue_check's verdict on v, made earlier (on another thread): 0, or its
 * error with the reason in *why. For value_check_call_take.
 */
typedef int (*value_verdict_fn)(const void *ctx, const Aiod__Value *v, const char **why);

/*
 * Text argument v (a string of a call with args_are_text) parsed as JSON
 * earlier (on another thread), as pbvalue_from_json_bounded does within
 * the limits: 1 with the value taken into *ret, or its error (-EINVAL: not
 * JSON, -ELOOP, -E2BIG) with the reason in *why; 0 when v was not parsed.
 * For value_check_call_take.
 */
typedef int (*value_json_fn)(const void *ctx, const Aiod__Value *v, Aiod__Value **ret,
                             const char **why);

/*
 * As value_check_call_borrowed, but the values are taken instead of copied:
 * for a request unpacked node by node (wire_decode_detached). Each value's
 * pbvalue_check is asked of `verdict` when it is not NULL (the checks ran
 * beside the decode), else made here. Nothing is taken unless every
 * argument passed the checks: on -EINVAL or -ENOMEM from them args[0..n)
 * are as they were; past them (success, or a conversion or missing
 * argument refused, or -ENOMEM) every args[i] is NULL, taken or freed.
 * Text a list, map or any parameter needs as JSON is asked of `json` first
 * when it is not NULL. Both callbacks get `ctx`.
 */
int value_check_call_take(const value_sig *sig, Aiod__Value **args, size_t n, bool text,
                          unsigned max_depth, value_verdict_fn verdict, value_json_fn json,
                          const void *ctx, Aiod__Value ***ret_argv, char *err, size_t err_len);

/* Frees an argument vector from value_check_call. Accepts NULL. */
void value_argv_free(Aiod__Value **argv, size_t n);

/* A short description for messages: `string "abc"`, `int 3`, `list of 2`. */
void value_describe(const Aiod__Value *v, char *buf, size_t len);

#endif
