/*
 * bx-key: sr25519 hotkeys and coldkeys in btcli wallet directories.
 *
 *   bx-key new      create a key, write it, print its mnemonic once
 *   bx-key import   from a mnemonic, a 0x seed or a secret URI
 *   bx-key show     SS58 address and public key (secrets only on request)
 *   bx-key sign     sign a message (text, hex or file); prints 0x signature
 *   bx-key verify   check a signature; exit 0 valid, 1 invalid
 *   bx-key ss58     public key <-> SS58 address
 *   bx-key list     wallets, coldkeys and hotkeys of a btcli wallets folder
 *
 * Exit codes: 0 done / valid, 1 failed / invalid, 2 usage error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "bx/crypto.h"
#include "bx/platform.h"

#define EXIT_USAGE 2
#define SECRET_MAX 1024
#define MSG_MAX    (64u << 20)

static const char usage_text[] =
	"Usage: bx-key <command> [options]\n"
	"\n"
	"Commands:\n"
	"  new      create a key in a wallet and print its mnemonic once\n"
	"  import   import a key (--mnemonic-file, --seed-file or --suri-file; '-' is stdin)\n"
	"  show     print the SS58 address and public key (--show-secret for the secret)\n"
	"  sign     sign a message: --message TEXT | --hex HEX | --file PATH\n"
	"  verify   verify --signature 0xHEX by --ss58 ADDR | --public 0xHEX over a message\n"
	"  ss58     --public 0xHEX [--prefix N] -> address; --decode ADDR -> public key\n"
	"  list     every wallet in the wallets folder with its coldkey and hotkey addresses\n"
	"\n"
	"Where the key is (new, import, show, sign):\n"
	"  --wallets-dir DIR  wallets folder ($BT_WALLET_PATH, else ~/.bittensor/wallets)\n"
	"  --wallet NAME      wallet ($BT_WALLET_NAME, else \"default\")\n"
	"  --hotkey NAME      hotkey ($BT_WALLET_HOTKEY, else \"default\")\n"
	"  --coldkey          the wallet's coldkey instead of a hotkey\n"
	"  --keyfile PATH     a keyfile path instead of a wallet\n"
	"\n"
	"Other options:\n"
	"  --password-file F  password from the first line of F (else asked on the terminal)\n"
	"  --encrypt          write $NACL-encrypted (default for coldkeys)\n"
	"  --no-encrypt       write plaintext JSON (default for hotkeys)\n"
	"  --words N          mnemonic length for new: 12 (default), 15, 18, 21 or 24\n"
	"  --overwrite        replace an existing keyfile\n"
	"  --no-bytes-wrap    verify: do not retry with <Bytes>...</Bytes> as btwallet does\n"
	"  --help             this text\n";

enum opt_id {
	OPT_WALLETS_DIR = 256,
	OPT_WALLET,
	OPT_HOTKEY,
	OPT_COLDKEY,
	OPT_KEYFILE,
	OPT_PASSWORD_FILE,
	OPT_ENCRYPT,
	OPT_NO_ENCRYPT,
	OPT_WORDS,
	OPT_OVERWRITE,
	OPT_MNEMONIC_FILE,
	OPT_SEED_FILE,
	OPT_SURI_FILE,
	OPT_SHOW_SECRET,
	OPT_MESSAGE,
	OPT_HEX,
	OPT_FILE,
	OPT_SIGNATURE,
	OPT_SS58,
	OPT_PUBLIC,
	OPT_PREFIX,
	OPT_DECODE,
	OPT_NO_BYTES_WRAP,
	OPT_HELP,
};

static const struct option long_opts[] = {
	{ "wallets-dir", required_argument, NULL, OPT_WALLETS_DIR },
	{ "wallet", required_argument, NULL, OPT_WALLET },
	{ "hotkey", required_argument, NULL, OPT_HOTKEY },
	{ "coldkey", no_argument, NULL, OPT_COLDKEY },
	{ "keyfile", required_argument, NULL, OPT_KEYFILE },
	{ "password-file", required_argument, NULL, OPT_PASSWORD_FILE },
	{ "encrypt", no_argument, NULL, OPT_ENCRYPT },
	{ "no-encrypt", no_argument, NULL, OPT_NO_ENCRYPT },
	{ "words", required_argument, NULL, OPT_WORDS },
	{ "overwrite", no_argument, NULL, OPT_OVERWRITE },
	{ "mnemonic-file", required_argument, NULL, OPT_MNEMONIC_FILE },
	{ "seed-file", required_argument, NULL, OPT_SEED_FILE },
	{ "suri-file", required_argument, NULL, OPT_SURI_FILE },
	{ "show-secret", no_argument, NULL, OPT_SHOW_SECRET },
	{ "message", required_argument, NULL, OPT_MESSAGE },
	{ "hex", required_argument, NULL, OPT_HEX },
	{ "file", required_argument, NULL, OPT_FILE },
	{ "signature", required_argument, NULL, OPT_SIGNATURE },
	{ "ss58", required_argument, NULL, OPT_SS58 },
	{ "public", required_argument, NULL, OPT_PUBLIC },
	{ "prefix", required_argument, NULL, OPT_PREFIX },
	{ "decode", required_argument, NULL, OPT_DECODE },
	{ "no-bytes-wrap", no_argument, NULL, OPT_NO_BYTES_WRAP },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

struct args {
	const char *cmd;
	const char *wallets_dir, *wallet, *hotkey, *keyfile;
	bool coldkey, overwrite, show_secret, no_bytes_wrap;
	int encrypt; /* -1: default for the key kind */
	const char *password_file;
	unsigned words;
	const char *mnemonic_file, *seed_file, *suri_file;
	const char *message, *hex, *file;
	const char *signature, *ss58, *public_hex, *decode;
	long prefix;
};

static int
usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "bx-key: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'bx-key --help'.\n");
	return EXIT_USAGE;
}

static int
parse_number(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		return -1;
	}
	*out = v;
	return 0;
}

/* Options that just store their argument or set a flag. */
static const struct {
	int id;
	size_t offset;
	bool flag; /* bool field set to true; else const char * field = arg */
} simple_opts[] = {
	{ OPT_WALLETS_DIR, offsetof(struct args, wallets_dir), false },
	{ OPT_WALLET, offsetof(struct args, wallet), false },
	{ OPT_HOTKEY, offsetof(struct args, hotkey), false },
	{ OPT_KEYFILE, offsetof(struct args, keyfile), false },
	{ OPT_PASSWORD_FILE, offsetof(struct args, password_file), false },
	{ OPT_MNEMONIC_FILE, offsetof(struct args, mnemonic_file), false },
	{ OPT_SEED_FILE, offsetof(struct args, seed_file), false },
	{ OPT_SURI_FILE, offsetof(struct args, suri_file), false },
	{ OPT_MESSAGE, offsetof(struct args, message), false },
	{ OPT_HEX, offsetof(struct args, hex), false },
	{ OPT_FILE, offsetof(struct args, file), false },
	{ OPT_SIGNATURE, offsetof(struct args, signature), false },
	{ OPT_SS58, offsetof(struct args, ss58), false },
	{ OPT_PUBLIC, offsetof(struct args, public_hex), false },
	{ OPT_DECODE, offsetof(struct args, decode), false },
	{ OPT_COLDKEY, offsetof(struct args, coldkey), true },
	{ OPT_OVERWRITE, offsetof(struct args, overwrite), true },
	{ OPT_SHOW_SECRET, offsetof(struct args, show_secret), true },
	{ OPT_NO_BYTES_WRAP, offsetof(struct args, no_bytes_wrap), true },
};

static int
apply_opt(struct args *a, int c, const char *arg)
{
	long n;

	for (size_t i = 0; i < BX_ARRAY_SIZE(simple_opts); i++) {
		if (simple_opts[i].id != c) {
			continue;
		}
		char *field = (char *)a + simple_opts[i].offset;
		if (simple_opts[i].flag) {
			*(bool *)(void *)field = true;
		} else {
			*(const char **)(void *)field = arg;
		}
		return 0;
	}
	if (c == OPT_ENCRYPT || c == OPT_NO_ENCRYPT) {
		a->encrypt = c == OPT_ENCRYPT;
	} else if (c == OPT_WORDS) {
		if (parse_number(arg, 12, 24, &n) != 0 || n % 3 != 0) {
			return usage_error("--words must be 12, 15, 18, 21 or 24, not '%s'", arg);
		}
		a->words = (unsigned)n;
	} else if (c == OPT_PREFIX) {
		if (parse_number(arg, 0, 16383, &n) != 0) {
			return usage_error("--prefix must be 0..16383, not '%s'", arg);
		}
		a->prefix = n;
	} else {
		return EXIT_USAGE;
	}
	return 0;
}

static const char *
env_or(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? v : def;
}

static int
parse_args(struct args *a, int argc, char **argv)
{
	int c, rc;

	memset(a, 0, sizeof(*a));
	a->encrypt = -1;
	a->words = 12;
	a->prefix = BX_SS58_BITTENSOR;
	a->wallet = env_or("BT_WALLET_NAME", "default");
	a->hotkey = env_or("BT_WALLET_HOTKEY", "default");
	if (argc >= 2 && argv[1][0] != '-') {
		a->cmd = argv[1];
		argv++;
		argc--;
	}
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
		if (c == 'h' || c == OPT_HELP) {
			fputs(usage_text, stdout);
			exit(0);
		}
		if (c == '?') {
			return usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
		}
		rc = apply_opt(a, c, optarg);
		if (rc != 0) {
			return rc;
		}
	}
	if (optind < argc) {
		return usage_error("unexpected argument '%s'", argv[optind]);
	}
	if (a->cmd == NULL) {
		return usage_error("%s", "no command given");
	}
	return 0;
}

/* ---------------- secrets from files and the terminal ---------------- */

/* The first line of path ('-' = stdin) into a sodium_malloc() buffer. */
static char *
read_secret_line(const char *path)
{
	char *buf = sodium_malloc(SECRET_MAX);
	FILE *f;
	size_t n;

	if (buf == NULL) {
		return NULL;
	}
	f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "bx-key: %s: %s\n", path, strerror(errno));
		sodium_free(buf);
		return NULL;
	}
	setvbuf(f, NULL, _IONBF, 0); /* no stdio copy of the secret */
	if (fgets(buf, SECRET_MAX, f) == NULL) {
		fprintf(stderr, "bx-key: %s: empty\n", path);
		if (f != stdin) {
			fclose(f);
		}
		sodium_free(buf);
		return NULL;
	}
	if (f != stdin) {
		fclose(f);
	}
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
		buf[--n] = '\0';
	}
	return buf;
}

/* Ask on /dev/tty with echo off. */
static char *
prompt_password(const char *prompt)
{
	struct termios old, quiet;
	char *buf;
	FILE *tty = fopen("/dev/tty", "r+");
	size_t n;

	if (tty == NULL) {
		fprintf(stderr, "bx-key: no terminal to ask for a password; use --password-file\n");
		return NULL;
	}
	buf = sodium_malloc(SECRET_MAX);
	setvbuf(tty, NULL, _IONBF, 0);
	fputs(prompt, tty);
	tcgetattr(fileno(tty), &old);
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
	if (buf != NULL && fgets(buf, SECRET_MAX, tty) == NULL) {
		sodium_free(buf);
		buf = NULL;
	}
	tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fputs("\n", tty);
	fclose(tty);
	if (buf != NULL) {
		n = strlen(buf);
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
			buf[--n] = '\0';
		}
	}
	return buf;
}

static char *
get_password(const struct args *a, bool confirm)
{
	char *pw, *again;

	if (a->password_file != NULL) {
		return read_secret_line(a->password_file);
	}
	pw = prompt_password("Password: ");
	if (pw == NULL || !confirm) {
		return pw;
	}
	again = prompt_password("Password again: ");
	if (again == NULL || strcmp(pw, again) != 0) {
		fprintf(stderr, "bx-key: the passwords differ\n");
		sodium_free(pw);
		pw = NULL;
	}
	sodium_free(again);
	return pw;
}

/* ---------------- key location ---------------- */

static int
key_path(const struct args *a, char *buf, size_t len, bool public_file)
{
	int rc;

	if (a->keyfile != NULL) {
		rc = snprintf(buf, len, "%s%s", a->keyfile, public_file ? "pub.txt" : "");
		return rc < 0 || (size_t)rc >= len ? -ENOSPC : 0;
	}
	if (a->coldkey) {
		rc = public_file ? bx_wallet_coldkeypub_path(buf, len, a->wallets_dir, a->wallet) :
		                   bx_wallet_coldkey_path(buf, len, a->wallets_dir, a->wallet);
	} else {
		rc = public_file ?
		             bx_wallet_hotkeypub_path(buf, len, a->wallets_dir, a->wallet,
		                                      a->hotkey) :
		             bx_wallet_hotkey_path(buf, len, a->wallets_dir, a->wallet, a->hotkey);
	}
	if (rc != 0) {
		fprintf(stderr, "bx-key: bad wallet or hotkey name, or no home folder (%s)\n",
		        bx_strerror(rc));
	}
	return rc;
}

/* Load the key at the selected place, asking for a password if it is encrypted. */
static int
load_key(const struct args *a, struct bx_sr25519_keypair **kp)
{
	char path[PATH_MAX], *pw = NULL;
	struct bx_errbuf eb;
	int rc;

	if (key_path(a, path, sizeof(path), false) != 0) {
		return 1;
	}
	rc = bx_keyfile_load(path, NULL, kp, &eb);
	if (rc == -ENOKEY && strstr(eb.msg, "encrypted") != NULL) {
		pw = get_password(a, false);
		if (pw == NULL) {
			return 1;
		}
		rc = bx_keyfile_load(path, pw, kp, &eb);
		sodium_free(pw);
	}
	if (rc != 0) {
		fprintf(stderr, "bx-key: %s\n", eb.msg);
		return 1;
	}
	return 0;
}

static void
print_public(const uint8_t pub[32], long prefix)
{
	char addr[BX_SS58_MAX_LEN], hex[65];

	bx_ss58_encode(addr, sizeof(addr), pub, (uint16_t)prefix);
	bx_hex_encode(hex, pub, 32);
	printf("ss58:   %s\npublic: 0x%s\n", addr, hex);
}

/* ---------------- new / import ---------------- */

static int
store_key(const struct args *a, const struct bx_sr25519_keypair *kp, const char *mnemonic)
{
	char path[PATH_MAX], pub_path[PATH_MAX], *pw = NULL;
	struct bx_errbuf eb;
	bool encrypt = a->encrypt >= 0 ? a->encrypt == 1 : a->coldkey;
	int rc;

	if (key_path(a, path, sizeof(path), false) != 0 ||
	    key_path(a, pub_path, sizeof(pub_path), true) != 0) {
		return 1;
	}
	if (encrypt) {
		pw = get_password(a, a->password_file == NULL);
		if (pw == NULL) {
			return 1;
		}
	}
	rc = bx_keyfile_write(path, kp, mnemonic, pw, a->overwrite, &eb);
	if (pw != NULL) {
		sodium_free(pw);
	}
	if (rc == 0) {
		rc = bx_keyfile_write_public(pub_path, bx_sr25519_public(kp), a->overwrite, &eb);
	}
	if (rc != 0) {
		fprintf(stderr, "bx-key: %s\n", eb.msg);
		return 1;
	}
	fprintf(stderr, "bx-key: wrote %s%s and %s\n", path, encrypt ? " (encrypted)" : "",
	        pub_path);
	print_public(bx_sr25519_public(kp), BX_SS58_BITTENSOR);
	return 0;
}

static int
cmd_new(const struct args *a)
{
	char *phrase = sodium_malloc(SECRET_MAX);
	uint8_t mini[32];
	struct bx_sr25519_keypair *kp = NULL;
	int rc = 1;

	if (phrase == NULL || bx_mnemonic_generate(phrase, SECRET_MAX, a->words) != 0 ||
	    bx_mnemonic_to_mini_secret(phrase, NULL, mini, NULL) != 0 ||
	    bx_sr25519_keypair_from_seed(mini, &kp) != 0) {
		fprintf(stderr, "bx-key: cannot create a key\n");
		goto out;
	}
	rc = store_key(a, kp, phrase);
	if (rc == 0) {
		fprintf(stderr, "bx-key: the mnemonic below is shown once; write it down and keep "
		                "it secret\n");
		printf("mnemonic: %s\n", phrase);
	}
out:
	sodium_memzero(mini, sizeof(mini));
	sodium_free(phrase);
	bx_sr25519_keypair_destroy(kp);
	return rc;
}

static int
import_from(const struct args *a, struct bx_sr25519_keypair **kp, char **phrase)
{
	struct bx_errbuf eb;
	uint8_t mini[32];
	char *text;
	int rc;

	if (!!a->mnemonic_file + !!a->seed_file + !!a->suri_file != 1) {
		return usage_error("%s", "import needs one of --mnemonic-file, --seed-file, "
		                         "--suri-file");
	}
	text = read_secret_line(a->mnemonic_file ? a->mnemonic_file :
	                        a->seed_file     ? a->seed_file :
	                                           a->suri_file);
	if (text == NULL) {
		return 1;
	}
	if (a->mnemonic_file != NULL) {
		rc = bx_mnemonic_to_mini_secret(text, NULL, mini, &eb);
		rc = rc == 0 ? bx_sr25519_keypair_from_seed(mini, kp) : rc;
		*phrase = rc == 0 ? text : NULL;
	} else if (a->seed_file != NULL) {
		rc = bx_hex_decode(mini, 32, text, strlen(text));
		if (rc != 0) {
			bx_err(&eb, EINVAL, "%s: a seed is 0x followed by 64 hex digits",
			       a->seed_file);
		}
		rc = rc == 0 ? bx_sr25519_keypair_from_seed(mini, kp) : rc;
	} else {
		rc = bx_suri_to_keypair(text, kp, &eb);
	}
	sodium_memzero(mini, sizeof(mini));
	if (*phrase == NULL) {
		sodium_free(text);
	}
	if (rc != 0) {
		fprintf(stderr, "bx-key: %s\n", eb.msg);
		return 1;
	}
	return 0;
}

static int
cmd_import(const struct args *a)
{
	struct bx_sr25519_keypair *kp = NULL;
	char *phrase = NULL;
	int rc = import_from(a, &kp, &phrase);

	if (rc == 0) {
		rc = store_key(a, kp, phrase);
	}
	if (phrase != NULL) {
		sodium_free(phrase);
	}
	bx_sr25519_keypair_destroy(kp);
	return rc;
}

/* ---------------- show / sign / verify / ss58 ---------------- */

static int
cmd_show(const struct args *a)
{
	struct bx_sr25519_keypair *kp = NULL;
	char path[PATH_MAX], hex[129];
	struct bx_errbuf eb;
	uint8_t pub[32], sec[64];

	if (!a->show_secret) {
		/* the keyfile if it is plaintext, else its public file: no password needed */
		if (key_path(a, path, sizeof(path), false) != 0) {
			return 1;
		}
		if (bx_keyfile_load_public(path, pub, &eb) != 0 &&
		    (key_path(a, path, sizeof(path), true) != 0 ||
		     bx_keyfile_load_public(path, pub, &eb) != 0)) {
			fprintf(stderr, "bx-key: %s\n", eb.msg);
			return 1;
		}
		print_public(pub, a->prefix);
		return 0;
	}
	if (load_key(a, &kp) != 0) {
		return 1;
	}
	print_public(bx_sr25519_public(kp), a->prefix);
	bx_sr25519_keypair_secret(kp, sec, BX_SR25519_SECRET_SCHNORRKEL);
	bx_hex_encode(hex, sec, 64);
	printf("privateKey: 0x%s\n", hex);
	if (bx_sr25519_keypair_seed(kp, sec) == 0) {
		bx_hex_encode(hex, sec, 32);
		printf("secretSeed: 0x%s\n", hex);
	}
	sodium_memzero(sec, sizeof(sec));
	sodium_memzero(hex, sizeof(hex));
	bx_sr25519_keypair_destroy(kp);
	return 0;
}

/* The message from --message, --hex or --file (malloc'd). */
static int
get_message(const struct args *a, uint8_t **msg, size_t *len)
{
	if (!!a->message + !!a->hex + !!a->file != 1) {
		return usage_error("%s", "give exactly one of --message, --hex, --file");
	}
	if (a->message != NULL) {
		*len = strlen(a->message);
		*msg = malloc(*len + 1);
		if (*msg != NULL) {
			memcpy(*msg, a->message, *len + 1);
		}
	} else if (a->hex != NULL) {
		size_t hl = strlen(a->hex);
		size_t skip = hl >= 2 && a->hex[0] == '0' && (a->hex[1] | 0x20) == 'x' ? 2 : 0;
		*len = (hl - skip) / 2;
		*msg = malloc(*len + 1);
		if (*msg != NULL && ((hl - skip) % 2 != 0 ||
		                     bx_hex_decode(*msg, *len, a->hex + skip, hl - skip) != 0)) {
			free(*msg);
			return usage_error("--hex: '%s' is not hex", a->hex);
		}
	} else {
		FILE *f = fopen(a->file, "rb");
		if (f == NULL) {
			fprintf(stderr, "bx-key: %s: %s\n", a->file, strerror(errno));
			return 1;
		}
		*msg = malloc(MSG_MAX);
		*len = *msg != NULL ? fread(*msg, 1, MSG_MAX, f) : 0;
		bool too_big = *len == MSG_MAX;
		fclose(f);
		if (too_big) {
			fprintf(stderr, "bx-key: %s: larger than %u bytes\n", a->file, MSG_MAX);
			free(*msg);
			return 1;
		}
	}
	if (*msg == NULL) {
		fprintf(stderr, "bx-key: out of memory\n");
		return 1;
	}
	return 0;
}

static int
cmd_sign(const struct args *a)
{
	struct bx_sr25519_keypair *kp = NULL;
	uint8_t *msg = NULL, sig[64];
	size_t len = 0;
	char hex[129];
	int rc = get_message(a, &msg, &len);

	if (rc != 0) {
		return rc;
	}
	if (load_key(a, &kp) != 0) {
		free(msg);
		return 1;
	}
	rc = bx_sr25519_sign(sig, msg, len, kp);
	if (rc == 0) {
		bx_hex_encode(hex, sig, 64);
		printf("0x%s\n", hex);
	} else {
		fprintf(stderr, "bx-key: signing failed: %s\n", bx_strerror(rc));
	}
	bx_sr25519_keypair_destroy(kp);
	free(msg);
	return rc == 0 ? 0 : 1;
}

static bool
verify_message(const uint8_t sig[64], const uint8_t *msg, size_t len, const uint8_t pub[32],
               bool bytes_wrap)
{
	return (bytes_wrap ? bx_sr25519_verify_btwallet(sig, msg, len, pub) :
	                     bx_sr25519_verify(sig, msg, len, pub)) == 0;
}

static int
cmd_verify(const struct args *a)
{
	uint8_t pub[32], sig[64], *msg = NULL;
	struct bx_errbuf eb;
	size_t len = 0;
	int rc;

	if (a->signature == NULL || !!a->ss58 + !!a->public_hex != 1) {
		return usage_error("%s", "verify needs --signature and one of --ss58, --public");
	}
	if (bx_hex_decode(sig, 64, a->signature, strlen(a->signature)) != 0) {
		return usage_error("--signature: '%s' is not 0x followed by 128 hex digits",
		                   a->signature);
	}
	if (a->ss58 != NULL && bx_ss58_decode(a->ss58, strlen(a->ss58), pub, NULL, &eb) != 0) {
		return usage_error("--ss58: %s", eb.msg);
	}
	if (a->public_hex != NULL &&
	    bx_hex_decode(pub, 32, a->public_hex, strlen(a->public_hex)) != 0) {
		return usage_error("--public: '%s' is not 0x followed by 64 hex digits",
		                   a->public_hex);
	}
	rc = get_message(a, &msg, &len);
	if (rc != 0) {
		return rc;
	}
	rc = verify_message(sig, msg, len, pub, !a->no_bytes_wrap) ? 0 : 1;
	free(msg);
	puts(rc == 0 ? "valid" : "invalid");
	return rc;
}

static int
cmd_ss58(const struct args *a)
{
	uint8_t pub[32];
	uint16_t prefix;
	struct bx_errbuf eb;
	char hex[65];

	if (!!a->public_hex + !!a->decode != 1) {
		return usage_error("%s", "ss58 needs one of --public, --decode");
	}
	if (a->decode != NULL) {
		if (bx_ss58_decode(a->decode, strlen(a->decode), pub, &prefix, &eb) != 0) {
			fprintf(stderr, "bx-key: %s\n", eb.msg);
			return 1;
		}
		bx_hex_encode(hex, pub, 32);
		printf("public: 0x%s\nprefix: %u\n", hex, prefix);
		return 0;
	}
	if (bx_hex_decode(pub, 32, a->public_hex, strlen(a->public_hex)) != 0) {
		return usage_error("--public: '%s' is not 0x followed by 64 hex digits",
		                   a->public_hex);
	}
	print_public(pub, a->prefix);
	return 0;
}

/* ---------------- list ---------------- */

static int
cmp_names(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Sorted entry names of a folder (malloc'd), skipping dot files. -1 if unreadable. */
static int
sorted_names(const char *dir, char ***out)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	int n = 0;

	if (d == NULL) {
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		char **grown;
		if (e->d_name[0] == '.' ||
		    (grown = realloc(names, sizeof(*names) * (size_t)(n + 1))) == NULL) {
			continue;
		}
		names = grown;
		names[n] = strdup(e->d_name);
		n += names[n] != NULL;
	}
	closedir(d);
	qsort(names, (size_t)n, sizeof(*names), cmp_names);
	*out = names;
	return n;
}

static void
free_names(char **names, int n)
{
	for (int i = 0; i < n; i++) {
		free(names[i]);
	}
	free(names);
}

/* One line: label, name and the address from the key file or its public file. */
static void
list_key(const char *label, const char *name, const char *path, const char *pub_path)
{
	char addr[BX_SS58_MAX_LEN] = "(unreadable)";
	struct bx_errbuf eb;
	uint8_t pub[32];

	if (bx_keyfile_load_public(path, pub, &eb) == 0 ||
	    bx_keyfile_load_public(pub_path, pub, &eb) == 0) {
		bx_ss58_encode(addr, sizeof(addr), pub, BX_SS58_BITTENSOR);
	}
	printf("  %-8s %-20s %s\n", label, name, addr);
}

static void
list_wallet(const char *root, const char *wallet)
{
	char path[PATH_MAX], pub_path[PATH_MAX], dir[PATH_MAX], **hk = NULL;
	int n;

	printf("wallet %s\n", wallet);
	if (bx_wallet_coldkey_path(path, sizeof(path), root, wallet) == 0 &&
	    bx_wallet_coldkeypub_path(pub_path, sizeof(pub_path), root, wallet) == 0 &&
	    (access(path, F_OK) == 0 || access(pub_path, F_OK) == 0)) {
		list_key("coldkey", "", path, pub_path);
	}
	n = snprintf(dir, sizeof(dir), "%s/%s/hotkeys", root, wallet);
	n = n > 0 && (size_t)n < sizeof(dir) ? sorted_names(dir, &hk) : -1;
	for (int i = 0; i < n; i++) {
		size_t l = strlen(hk[i]);
		if ((l > 7 && strcmp(hk[i] + l - 7, "pub.txt") == 0) ||
		    bx_wallet_hotkey_path(path, sizeof(path), root, wallet, hk[i]) != 0 ||
		    bx_wallet_hotkeypub_path(pub_path, sizeof(pub_path), root, wallet, hk[i]) !=
		            0) {
			continue;
		}
		list_key("hotkey", hk[i], path, pub_path);
	}
	if (n > 0) {
		free_names(hk, n);
	}
}

static int
cmd_list(const struct args *a)
{
	char root[PATH_MAX], **wallets = NULL;
	const char *env = getenv("BT_WALLET_PATH"), *home = getenv("HOME");
	int n;

	if (a->wallets_dir != NULL) {
		snprintf(root, sizeof(root), "%s", a->wallets_dir);
	} else if (env != NULL && env[0] != '\0') {
		snprintf(root, sizeof(root), "%s", env);
	} else {
		snprintf(root, sizeof(root), "%s/.bittensor/wallets", home ? home : "");
	}
	n = sorted_names(root, &wallets);
	if (n < 0) {
		fprintf(stderr, "bx-key: %s: %s\n", root, strerror(errno));
		return 1;
	}
	for (int i = 0; i < n; i++) {
		list_wallet(root, wallets[i]);
	}
	free_names(wallets, n);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(const struct args *a);
	} cmds[] = {
		{ "new", cmd_new },   { "import", cmd_import }, { "show", cmd_show },
		{ "sign", cmd_sign }, { "verify", cmd_verify }, { "ss58", cmd_ss58 },
		{ "list", cmd_list },
	};
	struct args a;
	int rc = parse_args(&a, argc, argv);

	if (rc != 0) {
		return rc;
	}
	if (bx_crypto_init() != 0) {
		fprintf(stderr, "bx-key: libsodium failed to initialise\n");
		return 1;
	}
	for (size_t i = 0; i < BX_ARRAY_SIZE(cmds); i++) {
		if (strcmp(a.cmd, cmds[i].name) == 0) {
			return cmds[i].fn(&a);
		}
	}
	return usage_error("unknown command '%s'", a.cmd);
}
