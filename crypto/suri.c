typedef int bx_suri_placeholder;
