#!/usr/bin/env python3
"""Write wordpiece_vectors.txt: random texts and the ids BERT's uncased
BasicTokenizer + WordPiece give them, computed with Python's own str.lower(),
unicodedata and the vocabulary, as an oracle independent of the C code.

Usage: python3 gen_wordpiece_vectors.py VOCAB.txt > wordpiece_vectors.txt
Each line: the text's UTF-8 bytes in hex, a tab, the ids (no [CLS]/[SEP]).
The logic follows google-research/bert tokenization.py (BasicTokenizer with
do_lower_case, WordpieceTokenizer with max_input_chars_per_word 100).
"""
import random
import sys
import unicodedata

CJK = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
       (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]


def is_control(c):
    return c not in '\t\n\r' and unicodedata.category(c).startswith('C')


def is_whitespace(c):
    return c in ' \t\n\r' or unicodedata.category(c) == 'Zs'


def is_punct(c):
    cp = ord(c)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(c).startswith('P')


def basic(text):
    text = ''.join(' ' if is_whitespace(c) else c for c in text
                   if ord(c) not in (0, 0xFFFD) and not is_control(c))
    text = ''.join(' %s ' % c if any(a <= ord(c) <= b for a, b in CJK) else c for c in text)
    out = []
    for tok in text.split():
        tok = unicodedata.normalize('NFD', tok.lower())
        tok = ''.join(c for c in tok if unicodedata.category(c) != 'Mn')
        cur = ''
        for c in tok:
            if is_punct(c):
                out += [cur] if cur else []
                out.append(c)
                cur = ''
            else:
                cur += c
        out += [cur] if cur else []
    return out


def wordpiece(tok, vocab):
    if len(tok) > 100:
        return [vocab['[UNK]']]
    out, s = [], 0
    while s < len(tok):
        for e in range(len(tok), s, -1):
            piece = ('##' if s else '') + tok[s:e]
            if piece in vocab:
                out.append(vocab[piece])
                s = e
                break
        else:
            return [vocab['[UNK]']]
    return out


def main():
    vocab = {t: i for i, t in enumerate(open(sys.argv[1], encoding='utf-8').read().split('\n')[:-1])}
    rnd = random.Random(6)
    alpha = list("abcXYZ019 .,'!-_\t\n") + [
        '\u03a3', '\u0391', '\u03bf', '\u0301', '\u0308', 'é', 'Å', 'ñ', 'ß', 'İ', 'ı', 'ﬁ', '½',
        '我', '想', '東', '京', 'タ', 'ワ', '한', '국', '\U0001F355', '\u200d', '\ufe0f', '\u2028',
        '\u00a0', '\u3000', '\x00', '\x07', '\x85', 'Ａ', 'ｂ', '\u037e', '\u00b7', '\u02bc', 'Ω',
        'ǅ', '\U00020000', '\uf900', '\u0130', '\u1e9e', '\u2126']
    ranges = [(0x80, 0x2FFF), (0x3000, 0xD7FF), (0xE000, 0xFFFF), (0x10000, 0x10FFFF)]
    for i in range(600):
        n = rnd.randint(0, 30)
        if i % 2:
            s = ''.join(rnd.choice(alpha) for _ in range(n))
        else:
            s = ''.join(rnd.choice(alpha) if rnd.random() < 0.5 else chr(rnd.randint(*rnd.choice(ranges)))
                        for _ in range(n))
        ids = [i for t in basic(s) for i in wordpiece(t, vocab)]
        print('%s\t%s' % (s.encode('utf-8').hex(), ' '.join(map(str, ids))))


if __name__ == '__main__':
    main()
