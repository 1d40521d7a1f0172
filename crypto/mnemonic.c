typedef int bx_mnemonic_placeholder;
