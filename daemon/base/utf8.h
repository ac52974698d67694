/*
 * UTF-8 for text the daemon sends. Protobuf string fields must hold valid
 * UTF-8 (strict decoders, Python's among them, refuse the whole message
 * otherwise), and the daemon sends text it did not write: lines a plugin
 * prints, a child's output, names a client gave. These helpers cut such text
 * on character boundaries and replace what is not UTF-8. Pure: no I/O, no
 * logging.
 *
 * "Valid" is RFC 3629: no overlong forms, no surrogates, nothing past
 * U+10FFFF. Replacement follows the Unicode "maximal subpart" practice (the
 * one Python's errors="replace" uses): each maximal ill-formed subsequence
 * becomes one U+FFFD.
 */
#ifndef AIOD_UTF8_H
#define AIOD_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* U+FFFD REPLACEMENT CHARACTER, 3 bytes. */
#define UTF8_REPLACEMENT "\xEF\xBF\xBD"

/* The length (1 to 4) of the well-formed character at the start of s[0..len),
 * or 0 when len is 0 or s does not start with one. A NUL byte is a character
 * of length 1. */
size_t utf8_char_len(const char *s, size_t len);

/* The length of the longest prefix of s[0..len) that is valid UTF-8; len when
 * all of it is. */
size_t utf8_valid_prefix(const char *s, size_t len);

/* Whether s[0..len) is valid UTF-8 and holds no NUL byte (can be sent as a
 * protobuf string through a C string). */
bool utf8_valid_text(const char *s, size_t len);

/* The largest n <= min(len, max) such that s[0..n) does not end inside a
 * character: cutting valid UTF-8 there leaves valid UTF-8. Only steps back
 * over continuation bytes (at most 3), so it is O(1). */
size_t utf8_cut(const char *s, size_t len, size_t max);

/* The length of s[0..len) without a character that is incomplete at its end
 * (text that vsnprintf or "%.Ns" cut short): len when the text ends on a
 * character boundary. O(1). */
size_t utf8_trim_partial(const char *s, size_t len);

/*
 * Writes s[0..len) into dst as valid UTF-8 without NUL: each maximal
 * ill-formed subsequence and each NUL byte becomes U+FFFD. At most
 * size - 1 bytes are written, never part of a character, then a NUL
 * (nothing at all when size is 0). Returns the bytes written (without the
 * NUL). dst and s must not overlap. Borrows both.
 */
size_t utf8_sanitize_into(char *dst, size_t size, const char *s, size_t len);

/*
 * A new NUL-terminated copy of s[0..len) made valid as utf8_sanitize_into
 * does, of at most `max` bytes (cut on a character boundary). Its length goes
 * to *ret_len when ret_len is not NULL. Returns NULL on out of memory only;
 * the caller owns (free) the result. Costs O(min(len, max)) and allocates at most
 * min(3 * len, max) + 1 bytes.
 */
char *utf8_sanitize(const char *s, size_t len, size_t max, size_t *ret_len);

#endif
