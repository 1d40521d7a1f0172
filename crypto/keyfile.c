typedef int bx_keyfile_placeholder;
