/*
 * safetensors reader and writer (huggingface/safetensors README, "Format"):
 * u64 LE header length N, N bytes of JSON {name: {dtype, shape,
 * data_offsets}, "__metadata__": {str: str}}, then the data section, which
 * the tensors must cover exactly: no overlaps, no holes, no trailing bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include <bx/infer.h>

struct bx_st_file {
	char *path;
	void *map; /* NULL for bx_st_open_mem() */
	size_t map_len;
	unsigned nb;
	struct bx_st_tensor *t;
	char *names;
};

static const struct {
	const char *name;
	size_t size;
} dtypes[] = {
	[BX_DT_F32] = { "F32", 4 },   [BX_DT_F16] = { "F16", 2 }, [BX_DT_BF16] = { "BF16", 2 },
	[BX_DT_F64] = { "F64", 8 },   [BX_DT_I64] = { "I64", 8 }, [BX_DT_I32] = { "I32", 4 },
	[BX_DT_I16] = { "I16", 2 },   [BX_DT_I8] = { "I8", 1 },   [BX_DT_U8] = { "U8", 1 },
	[BX_DT_BOOL] = { "BOOL", 1 },
};

const char *
bx_dtype_name(enum bx_dtype dt)
{
	return (unsigned)dt < BX_ARRAY_SIZE(dtypes) ? dtypes[dt].name : "?";
}

size_t
bx_dtype_size(enum bx_dtype dt)
{
	return (unsigned)dt < BX_ARRAY_SIZE(dtypes) ? dtypes[dt].size : 0;
}

unsigned
bx_st_count(const struct bx_st_file *f)
{
	return f->nb;
}

const struct bx_st_tensor *
bx_st_get(const struct bx_st_file *f, unsigned i)
{
	return i < f->nb ? &f->t[i] : NULL;
}

const struct bx_st_tensor *
bx_st_find(const struct bx_st_file *f, const char *name)
{
	for (unsigned i = 0; i < f->nb; i++) {
		if (strcmp(f->t[i].name, name) == 0) {
			return &f->t[i];
		}
	}
	return NULL;
}

const char *
bx_st_path(const struct bx_st_file *f)
{
	return f->path;
}

void
bx_st_close(struct bx_st_file *f)
{
	if (f == NULL) {
		return;
	}
	if (f->map != NULL) {
		munmap(f->map, f->map_len);
	}
	bx_free(f->t);
	bx_free(f->names);
	bx_free(f->path);
	bx_free(f);
}

/* A JSON integer in [0, 2^62], or -1. */
static int64_t
json_u62(const json_t *v)
{
	json_int_t x;

	if (!json_is_integer(v)) {
		return -1;
	}
	x = json_integer_value(v);
	return (x < 0 || x > ((json_int_t)1 << 62)) ? -1 : (int64_t)x;
}

static int
parse_dtype(const json_t *v, enum bx_dtype *dt)
{
	const char *s = json_string_value(v);

	if (s == NULL) {
		return -1;
	}
	for (unsigned i = 0; i < BX_ARRAY_SIZE(dtypes); i++) {
		if (strcmp(s, dtypes[i].name) == 0) {
			*dt = (enum bx_dtype)i;
			return 0;
		}
	}
	return -1;
}

/* Fill t from one header entry; the message names the tensor. */
static int
parse_entry(const char *path, const char *name, json_t *e, struct bx_st_tensor *t,
            struct bx_errbuf *eb)
{
	json_t *dt = json_object_get(e, "dtype"), *shape = json_object_get(e, "shape");
	json_t *off = json_object_get(e, "data_offsets");
	uint64_t nb_elem = 1, nb_bytes;
	int64_t b, en;

	if (!json_is_object(e)) {
		return bx_err(eb, EBADMSG, "%s: tensor \"%s\": not a JSON object", path, name);
	}
	if (json_object_size(e) != 3 || dt == NULL || shape == NULL || off == NULL) {
		return bx_err(eb, EBADMSG,
		              "%s: tensor \"%s\": needs exactly dtype, shape and data_offsets",
		              path, name);
	}
	if (parse_dtype(dt, &t->dtype) < 0) {
		return bx_err(eb, EBADMSG, "%s: tensor \"%s\": unknown dtype", path, name);
	}
	if (!json_is_array(shape) || json_array_size(shape) > BX_ST_NDIMS_MAX) {
		return bx_err(eb, EBADMSG, "%s: tensor \"%s\": shape is not an array of at most %d",
		              path, name, BX_ST_NDIMS_MAX);
	}
	t->ndims = (unsigned)json_array_size(shape);
	for (unsigned i = 0; i < t->ndims; i++) {
		int64_t d = json_u62(json_array_get(shape, i));

		if (d < 0 || (d > 0 && nb_elem > (UINT64_C(1) << 60) / (uint64_t)d)) {
			return bx_err(eb, EBADMSG, "%s: tensor \"%s\": bad shape dimension %u",
			              path, name, i);
		}
		t->shape[i] = (uint64_t)d;
		nb_elem *= (uint64_t)d;
	}
	b = json_array_size(off) == 2 ? json_u62(json_array_get(off, 0)) : -1;
	en = json_array_size(off) == 2 ? json_u62(json_array_get(off, 1)) : -1;
	if (!json_is_array(off) || b < 0 || en < b) {
		return bx_err(eb, EBADMSG, "%s: tensor \"%s\": bad data_offsets", path, name);
	}
	nb_bytes = nb_elem * bx_dtype_size(t->dtype);
	if ((uint64_t)(en - b) != nb_bytes) {
		return bx_err(eb, EBADMSG,
		              "%s: tensor \"%s\": data_offsets [%" PRId64 ", %" PRId64
		              "] hold %" PRIu64 " bytes, "
		              "its dtype and shape need %" PRIu64,
		              path, name, (int64_t)b, (int64_t)en, (uint64_t)(en - b),
		              (uint64_t)nb_bytes);
	}
	t->begin = (uint64_t)b;
	t->end = (uint64_t)en;
	return 0;
}

static int
cmp_begin(const void *a, const void *b)
{
	const struct bx_st_tensor *x = *(const struct bx_st_tensor *const *)a;
	const struct bx_st_tensor *y = *(const struct bx_st_tensor *const *)b;

	if (x->begin != y->begin) {
		return x->begin < y->begin ? -1 : 1;
	}
	return x->end < y->end ? -1 : x->end > y->end;
}

/* Tensors must tile [0, end) exactly; *end gets the covered length. */
static int
check_layout(struct bx_st_file *f, uint64_t *end, struct bx_errbuf *eb)
{
	const struct bx_st_tensor **v;
	uint64_t pos = 0;

	if (f->nb == 0) {
		*end = 0;
		return 0;
	}
	v = bx_calloc(f->nb, sizeof(const struct bx_st_tensor *));
	if (v == NULL) {
		return bx_err(eb, ENOMEM, "%s: out of memory", f->path);
	}
	for (unsigned i = 0; i < f->nb; i++) {
		v[i] = &f->t[i];
	}
	qsort(v, f->nb, sizeof(const struct bx_st_tensor *), cmp_begin);
	for (unsigned i = 0; i < f->nb; i++) {
		if (v[i]->begin != pos) {
			int r = bx_err(eb, EBADMSG,
			               "%s: tensor \"%s\" at data offset %" PRIu64 " %s", f->path,
			               v[i]->name, (uint64_t)v[i]->begin,
			               v[i]->begin < pos ? "overlaps the tensor before it" :
			                                   "leaves a hole before it");

			bx_free(v);
			return r;
		}
		pos = v[i]->end;
	}
	bx_free(v);
	*end = pos;
	return 0;
}

/* Parse the JSON header into f->t / f->names. */
static int
parse_header(struct bx_st_file *f, const char *hdr, size_t n, struct bx_errbuf *eb)
{
	json_error_t jerr;
	json_t *root, *v;
	const char *key;
	size_t names_len = 0, pos = 0;
	unsigned i = 0;
	int ret = 0;

	if (n == 0 || hdr[0] != '{') {
		return bx_err(eb, EBADMSG, "%s: header does not start with '{'", f->path);
	}
	root = json_loadb(hdr, n, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		return bx_err(eb, EBADMSG, "%s: header JSON, byte %d: %s", f->path, jerr.position,
		              jerr.text);
	}
	if (!json_is_object(root)) {
		ret = bx_err(eb, EBADMSG, "%s: header is not a JSON object", f->path);
		goto out_root;
	}
	json_object_foreach(root, key, v)
	{
		if (strcmp(key, "__metadata__") == 0) {
			const char *mk;
			json_t *mv;

			if (!json_is_object(v)) {
				ret = bx_err(eb, EBADMSG, "%s: __metadata__ is not an object",
				             f->path);
				goto out_root;
			}
			json_object_foreach(v, mk, mv)
			{
				if (!json_is_string(mv)) {
					ret = bx_err(eb, EBADMSG,
					             "%s: __metadata__ \"%s\" is not a string",
					             f->path, mk);
					goto out_root;
				}
			}
			continue;
		}
		names_len += strlen(key) + 1;
		f->nb++;
	}
	f->t = bx_calloc(f->nb ? f->nb : 1, sizeof(*f->t));
	f->names = bx_malloc(names_len ? names_len : 1);
	if (f->t == NULL || f->names == NULL) {
		ret = bx_err(eb, ENOMEM, "%s: out of memory", f->path);
		goto out_root;
	}
	json_object_foreach(root, key, v)
	{
		if (strcmp(key, "__metadata__") == 0) {
			continue;
		}
		f->t[i].name = memcpy(f->names + pos, key, strlen(key) + 1);
		pos += strlen(key) + 1;
		ret = parse_entry(f->path, key, v, &f->t[i], eb);
		if (ret < 0) {
			goto out_root;
		}
		i++;
	}
out_root:
	json_decref(root);
	return ret;
}

static int
open_buf(struct bx_st_file *f, const uint8_t *buf, size_t len, unsigned flags, struct bx_errbuf *eb)
{
	uint64_t n = 0, need = 0;
	int ret;

	if (len < 8) {
		return bx_err(eb, EBADMSG, "%s: %zu bytes, shorter than the 8-byte header length",
		              f->path, len);
	}
	for (int i = 7; i >= 0; i--) {
		n = (n << 8) | buf[i];
	}
	if (n > BX_ST_HEADER_MAX) {
		return bx_err(eb, EBADMSG,
		              "%s: header length %" PRIu64 " is over the %u-byte limit", f->path,
		              (uint64_t)n, BX_ST_HEADER_MAX);
	}
	if (n > len - 8) {
		return bx_err(eb, EBADMSG,
		              "%s: header length %" PRIu64
		              " is past the end of the file (%zu bytes)",
		              f->path, (uint64_t)n, len);
	}
	ret = parse_header(f, (const char *)buf + 8, (size_t)n, eb);
	if (ret < 0) {
		return ret;
	}
	ret = check_layout(f, &need, eb);
	if (ret < 0) {
		return ret;
	}
	if (flags & BX_ST_HEADER_ONLY) {
		return 0;
	}
	if (need > len - 8 - n) {
		return bx_err(eb, EBADMSG,
		              "%s: file shorter than its header says: the tensors need %" PRIu64
		              " data "
		              "bytes, the file has %" PRIu64,
		              f->path, (uint64_t)need, (uint64_t)(len - 8 - n));
	}
	if (need < len - 8 - n) {
		return bx_err(eb, EBADMSG, "%s: %" PRIu64 " bytes after the last tensor", f->path,
		              (uint64_t)(len - 8 - n - need));
	}
	for (unsigned i = 0; i < f->nb; i++) {
		f->t[i].data = buf + 8 + n + f->t[i].begin;
	}
	return 0;
}

int
bx_st_open_mem(const void *buf, size_t len, const char *name, unsigned flags,
               struct bx_st_file **out, struct bx_errbuf *eb)
{
	struct bx_st_file *f = bx_calloc(1, sizeof(*f));
	int ret;

	if (f == NULL || (f->path = strdup(name)) == NULL) {
		bx_free(f);
		return bx_err(eb, ENOMEM, "%s: out of memory", name);
	}
	ret = open_buf(f, buf, len, flags, eb);
	if (ret < 0) {
		bx_st_close(f);
		return ret;
	}
	*out = f;
	return 0;
}

int
bx_st_open(const char *path, unsigned flags, struct bx_st_file **out, struct bx_errbuf *eb)
{
	struct bx_st_file *f;
	struct stat st;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return bx_err(eb, errno, "%s: %s", path, bx_strerror(errno));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return bx_err(eb, EINVAL, "%s: not a regular file", path);
	}
	f = bx_calloc(1, sizeof(*f));
	if (f == NULL || (f->path = strdup(path)) == NULL) {
		bx_free(f);
		close(fd);
		return bx_err(eb, ENOMEM, "%s: out of memory", path);
	}
	if (st.st_size > 0) {
		f->map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (f->map == MAP_FAILED) {
			f->map = NULL;
			ret = bx_err(eb, errno, "%s: mmap: %s", path, bx_strerror(errno));
			goto out_close;
		}
		f->map_len = (size_t)st.st_size;
	}
	ret = open_buf(f, f->map, (size_t)st.st_size, flags, eb);
out_close:
	close(fd);
	if (ret < 0) {
		bx_st_close(f);
		return ret;
	}
	*out = f;
	return 0;
}

/* ---------------------------------------------------------------- */
/* Writer */

static int
write_all(FILE *fp, const void *p, size_t n)
{
	return fwrite(p, 1, n, fp) == n ? 0 : -EIO;
}

static char *
build_header(const struct bx_st_out *t, unsigned n, size_t *len)
{
	size_t cap = 64 + (size_t)n * (96 + 24 * BX_ST_NDIMS_MAX), pos = 0;
	char *h = bx_malloc(cap);
	uint64_t off = 0;

	if (h == NULL) {
		return NULL;
	}
	pos += (size_t)snprintf(h + pos, cap - pos, "{\"__metadata__\":{\"format\":\"pt\"}");
	for (unsigned i = 0; i < n && pos < cap; i++) {
		uint64_t nb = bx_dtype_size(t[i].dtype);

		pos += (size_t)snprintf(h + pos, cap - pos, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[",
		                        t[i].name, bx_dtype_name(t[i].dtype));
		for (unsigned d = 0; d < t[i].ndims && pos < cap; d++) {
			nb *= t[i].shape[d];
			pos += (size_t)snprintf(h + pos, cap - pos, "%s%" PRIu64, d ? "," : "",
			                        (uint64_t)t[i].shape[d]);
		}
		if (pos < cap) {
			pos += (size_t)snprintf(h + pos, cap - pos,
			                        "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}",
			                        (uint64_t)off, (uint64_t)(off + nb));
		}
		off += nb;
	}
	if (pos + 9 >= cap) {
		bx_free(h);
		return NULL;
	}
	h[pos++] = '}';
	while ((8 + pos) % 8 != 0) {
		h[pos++] = ' ';
	}
	*len = pos;
	return h;
}

int
bx_st_write(const char *path, const struct bx_st_out *t, unsigned n, struct bx_errbuf *eb)
{
	uint8_t lenb[8];
	size_t hlen = 0;
	char *h;
	FILE *fp;
	int ret = 0;

	for (unsigned i = 0; i < n; i++) {
		if (strlen(t[i].name) > 200 || strpbrk(t[i].name, "\"\\") != NULL ||
		    t[i].ndims > BX_ST_NDIMS_MAX) {
			return bx_err(eb, EINVAL, "%s: cannot write tensor \"%s\"", path,
			              t[i].name);
		}
	}
	h = build_header(t, n, &hlen);
	if (h == NULL) {
		return bx_err(eb, ENOMEM, "%s: out of memory", path);
	}
	fp = fopen(path, "wb");
	if (fp == NULL) {
		ret = bx_err(eb, errno, "%s: %s", path, bx_strerror(errno));
		goto out_free;
	}
	for (int i = 0; i < 8; i++) {
		lenb[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
	}
	ret = write_all(fp, lenb, 8);
	if (ret == 0) {
		ret = write_all(fp, h, hlen);
	}
	for (unsigned i = 0; i < n && ret == 0; i++) {
		size_t nb = bx_dtype_size(t[i].dtype);

		for (unsigned d = 0; d < t[i].ndims; d++) {
			nb *= t[i].shape[d];
		}
		ret = write_all(fp, t[i].data, nb);
	}
	if (fclose(fp) != 0 && ret == 0) {
		ret = -EIO;
	}
	if (ret < 0) {
		ret = bx_err(eb, -ret, "%s: write failed", path);
	}
out_free:
	bx_free(h);
	return ret;
}
