/*
 * The task id counter that survives restarts and crashes (idstore.c): ids
 * are reserved in blocks, on disk, before they are handed out.
 */
#ifndef AIOD_IDSTORE_H
#define AIOD_IDSTORE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Opens (creating it, mode 0700, with its parents) the state directory
 * `dir`. 0; a negative errno with the reason in `err`; -ENOMEM.
 */
int idstore_open(const char *dir, char *err, size_t err_len);

/*
 * Reserves the next block of ids, durably: every id in [*ret_first,
 * *ret_end) is free to use, and no later reservation, by this daemon or the
 * next one on the same directory, returns any of them. Blocks grow from
 * LIMIT_ID_BLOCK_MIN to LIMIT_ID_BLOCK_MAX. 0; a negative errno with the
 * reason in `err` (-EBADMSG: next-id is damaged; -ENOSPC, -EIO, ...).
 */
int idstore_reserve(uint64_t *ret_first, uint64_t *ret_end, char *err, size_t err_len);

/*
 * Makes sure no later reservation returns `id` or below (next-id was
 * removed, or restored from an older backup than the store): 1 if next-id
 * was moved past `id`, 0 if it was already; a negative errno with the
 * reason in `err`.
 */
int idstore_skip_past(uint64_t id, char *err, size_t err_len);

/* The state directory, or NULL before idstore_open(). */
const char *idstore_dir(void);

/* Closes the directory; idstore_open() may be called again. */
void idstore_close(void);

#endif
