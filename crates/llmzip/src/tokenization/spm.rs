//! SentencePiece tokenizers with byte fallback, as GGUF files store them (`tokenizer.ggml.model
//! = "llama"`: Gemma 3, the first llamas): pieces with scores, spaces written `▁`, and 256 byte
//! tokens for what no piece covers.
//!
//! **Encoding** follows llama.cpp's, which is what the models were measured with
//! (docs/models.md): the text is first cut at every *user-defined* piece (Gemma's runs of
//! newlines, tabs and spaces; longest pieces first, each matched wherever it occurs), then in
//! each fragment spaces become `▁` and adjacent symbols are merged, best-scored pair first (the
//! leftmost among equals), as long as the merged text is a normal piece. A character that no
//! piece covers is spelled in byte tokens.
//!
//! **Why every byte string comes back.** Decoding is a table: a normal piece is its text with
//! `▁` read as a space, a user-defined piece its text, a byte token its byte. llama.cpp would
//! turn a `▁` already in the input into a space and bytes that are not UTF-8 into `<unk>`; here
//! both are spelled in byte tokens instead (a `▁` never merges), and control pieces (`<bos>`,
//! `<start_of_turn>`, …) are never produced, so decoding is exact for every input. The codec
//! checks `decode(encode(x)) == x` on every block anyway (`tokenization`'s module docs).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use super::Tokenizer;
use crate::{Error, Result};

/// SentencePiece's kinds of piece (GGUF's `tokenizer.ggml.token_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceKind {
    /// A subword; `▁` in its text is a space.
    Normal,
    /// The unknown piece (never produced).
    Unknown,
    /// A control piece such as `<bos>` (never produced).
    Control,
    /// A piece matched as a whole in the raw text before merging.
    UserDefined,
    /// A reserved piece (never produced).
    Unused,
    /// One byte, written `<0xAB>`.
    Byte,
}

impl PieceKind {
    /// The kind GGUF's token type number `t` stands for (llama.cpp's `llama_token_type`).
    pub fn from_gguf(t: i32) -> Option<PieceKind> {
        Some(match t {
            1 => PieceKind::Normal,
            2 => PieceKind::Unknown,
            3 => PieceKind::Control,
            4 => PieceKind::UserDefined,
            5 => PieceKind::Unused,
            6 => PieceKind::Byte,
            _ => return None,
        })
    }
}

/// The space SentencePiece writes in pieces.
const SPACE: char = '\u{2581}';

/// A SentencePiece vocabulary with byte fallback: encoding by scored merges, decoding by table.
pub struct SpmTokenizer {
    id: String,
    /// Normal pieces by text (with `▁`), and their scores.
    normal: HashMap<Box<str>, (u32, f32)>,
    /// User-defined pieces, longest first (then by id): the order the raw text is cut in.
    user_defined: Vec<(Box<str>, u32)>,
    /// Bytes of each id; `None` for ids that are never produced.
    bytes_of: Vec<Option<Box<[u8]>>>,
    /// The byte token of each byte.
    byte_token: [u32; 256],
}

impl SpmTokenizer {
    /// A tokenizer from pieces in id order, with their scores and kinds. Every byte needs its
    /// byte piece (`<0x00>` … `<0xFF>`): byte fallback is what makes every input encodable.
    pub fn new(pieces: &[String], scores: &[f32], kinds: &[PieceKind]) -> Result<SpmTokenizer> {
        if pieces.len() != scores.len() || pieces.len() != kinds.len() || pieces.is_empty() {
            return Err(Error::Model(format!(
                "a SentencePiece vocabulary needs a score and a kind for each of its pieces \
                 ({} pieces, {} scores, {} kinds)",
                pieces.len(),
                scores.len(),
                kinds.len()
            )));
        }
        if pieces.len() > u32::MAX as usize {
            return Err(Error::Model("the vocabulary is too large".into()));
        }
        let mut normal = HashMap::with_capacity(pieces.len());
        let mut user_defined: Vec<(Box<str>, u32)> = Vec::new();
        let mut bytes_of = vec![None; pieces.len()];
        let mut byte_token = [None; 256];
        for (id, ((piece, &score), &kind)) in pieces.iter().zip(scores).zip(kinds).enumerate() {
            let id = id as u32;
            let bytes: Option<Vec<u8>> = match kind {
                PieceKind::Normal if !piece.is_empty() => {
                    // The first of equal pieces wins, as in llama.cpp's map.
                    normal.entry(piece.as_str().into()).or_insert((id, score));
                    Some(piece.replace(SPACE, " ").into_bytes())
                }
                PieceKind::UserDefined if !piece.is_empty() => {
                    user_defined.push((piece.as_str().into(), id));
                    Some(piece.clone().into_bytes())
                }
                PieceKind::Byte => {
                    let b = byte_piece(piece).ok_or_else(|| {
                        Error::Model(format!("byte piece {id} is '{piece}', not <0xAB>"))
                    })?;
                    byte_token[b as usize].get_or_insert(id);
                    Some(vec![b])
                }
                _ => None,
            };
            bytes_of[id as usize] = bytes.map(Vec::into_boxed_slice);
        }
        user_defined.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        let mut bytes = [0u32; 256];
        for (b, t) in byte_token.iter().enumerate() {
            bytes[b] = t.ok_or_else(|| {
                Error::Model(format!(
                    "the vocabulary has no byte piece <0x{b:02X}>, so not every input could be \
                     encoded"
                ))
            })?;
        }

        Ok(SpmTokenizer {
            id: super::table_id("spm", b"spm", &bytes_of),
            normal,
            user_defined,
            bytes_of,
            byte_token: bytes,
        })
    }

    /// Number of token ids.
    pub fn vocab_size(&self) -> usize {
        self.bytes_of.len()
    }

    /// Encodes valid UTF-8: cut at user-defined pieces, the fragments merged.
    fn encode_text(&self, text: &str, out: &mut Vec<u32>) {
        // (start, end, id) of every user-defined match, found longest piece first; a match may
        // not overlap one found before (llama.cpp's partition, which cuts fragment by fragment).
        let mut taken: Vec<(usize, usize, u32)> = Vec::new();
        for (piece, id) in &self.user_defined {
            let mut found = Vec::new();
            let mut from = 0;
            while let Some(at) = text[from..].find(&**piece) {
                let (s, e) = (from + at, from + at + piece.len());
                // The first earlier match that ends after `s`: this one may not overlap it.
                let i = taken.partition_point(|m| m.1 <= s);
                if i < taken.len() && taken[i].0 < e {
                    from = s + text[s..].chars().next().map_or(1, char::len_utf8);
                } else {
                    found.push((s, e, *id));
                    from = e;
                }
            }
            if !found.is_empty() {
                taken = merge_sorted(taken, found);
            }
        }
        let mut at = 0;
        for (s, e, id) in taken {
            self.encode_fragment(&text[at..s], out);
            out.push(id);
            at = e;
        }
        self.encode_fragment(&text[at..], out);
    }

    /// SentencePiece's merges over one fragment (no user-defined piece in it).
    fn encode_fragment(&self, text: &str, out: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        let escaped = text.replace(' ', "\u{2581}");
        // Symbols are byte ranges of `escaped`; a `▁` of the input (`raw`) never merges.
        let raw_space: Vec<bool> = text.chars().map(|c| c == SPACE).collect();
        let mut symbols: Vec<Symbol> = Vec::with_capacity(escaped.len());
        for ((i, c), raw) in escaped.char_indices().zip(raw_space) {
            let n = symbols.len();
            symbols.push(Symbol {
                start: i,
                len: c.len_utf8(),
                prev: n.checked_sub(1),
                next: None,
                raw,
            });
            if n > 0 {
                symbols[n - 1].next = Some(n);
            }
        }
        let mut queue = BinaryHeap::new();
        for left in 0..symbols.len().saturating_sub(1) {
            self.add_pair(&escaped, &symbols, left, &mut queue);
        }
        while let Some(pair) = queue.pop() {
            let (l, r) = (pair.left, pair.right);
            if symbols[l].len == 0
                || symbols[r].len == 0
                || symbols[l].len + symbols[r].len != pair.len
            {
                continue; // one side merged since
            }
            symbols[l].len += symbols[r].len;
            symbols[r].len = 0;
            symbols[l].next = symbols[r].next;
            if let Some(n) = symbols[r].next {
                symbols[n].prev = Some(l);
            }
            if let Some(p) = symbols[l].prev {
                self.add_pair(&escaped, &symbols, p, &mut queue);
            }
            self.add_pair(&escaped, &symbols, l, &mut queue);
        }
        let mut s = Some(0);
        while let Some(i) = s {
            let sym = &symbols[i];
            let piece = &escaped[sym.start..][..sym.len];
            match self.normal.get(piece).filter(|_| !sym.raw) {
                Some(&(id, _)) => out.push(id),
                None => {
                    // Byte fallback, in the input's bytes (a raw `▁` is itself).
                    let original = if sym.raw {
                        "\u{2581}"
                    } else {
                        &piece.replace(SPACE, " ")
                    };
                    out.extend(original.bytes().map(|b| self.byte_token[b as usize]));
                }
            }
            s = sym.next;
        }
    }

    /// Queues the merge of symbol `left` with the next one, if the merged text is a piece.
    fn add_pair(&self, text: &str, symbols: &[Symbol], left: usize, queue: &mut BinaryHeap<Pair>) {
        let Some(right) = symbols[left].next else {
            return;
        };
        let (a, b) = (&symbols[left], &symbols[right]);
        if a.raw || b.raw {
            return;
        }
        let len = a.len + b.len;
        if let Some(&(_, score)) = self.normal.get(&text[a.start..][..len]) {
            queue.push(Pair {
                score,
                left,
                right,
                len,
            });
        }
    }
}

/// Two lists of disjoint ranges, each in order, as one list in order.
fn merge_sorted<T: Copy>(
    a: Vec<(usize, usize, T)>,
    b: Vec<(usize, usize, T)>,
) -> Vec<(usize, usize, T)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.0 <= y.0 => a.next(),
            (_, Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, None) => return out,
        };
        out.extend(next);
    }
}

/// The byte a piece `<0xAB>` stands for.
fn byte_piece(piece: &str) -> Option<u8> {
    let hex = piece.strip_prefix("<0x")?.strip_suffix('>')?;
    (hex.len() == 2).then(|| u8::from_str_radix(hex, 16).ok())?
}

/// A run of the fragment, merged from its characters.
struct Symbol {
    start: usize,
    /// Bytes; 0 once merged into the symbol before it.
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
    /// A `▁` of the input, spelled in bytes and never merged.
    raw: bool,
}

/// A possible merge: the best score first, then the leftmost.
struct Pair {
    score: f32,
    left: usize,
    right: usize,
    len: usize,
}

impl PartialEq for Pair {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pair {}

impl PartialOrd for Pair {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pair {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then(other.left.cmp(&self.left))
    }
}

impl Tokenizer for SpmTokenizer {
    fn id(&self) -> &str {
        &self.id
    }

    fn encode(&self, bytes: &[u8]) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(bytes.len() / 3);
        for chunk in bytes.utf8_chunks() {
            self.encode_text(chunk.valid(), &mut out);
            out.extend(chunk.invalid().iter().map(|&b| self.byte_token[b as usize]));
        }
        Ok(out)
    }

    fn decode(&self, tokens: &[u32], out: &mut Vec<u8>) -> Result<()> {
        for &t in tokens {
            out.extend_from_slice(super::token_bytes(&self.bytes_of, t)?);
        }
        Ok(())
    }

    /// Every token decodes on its own: the parts one after the other.
    fn decode_parts(&self, parts: &[Vec<u32>], out: &mut Vec<u8>) -> Result<()> {
        parts.iter().try_for_each(|p| self.decode(p, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small vocabulary in Gemma's style: control pieces, a newline run, byte pieces, then
    /// subwords by falling score.
    fn tiny() -> SpmTokenizer {
        let mut pieces: Vec<String> =
            vec!["<pad>".into(), "<bos>".into(), "\n".into(), "\n\n".into()];
        let mut kinds = vec![
            PieceKind::Control,
            PieceKind::Control,
            PieceKind::UserDefined,
            PieceKind::UserDefined,
        ];
        for b in 0..=255u8 {
            pieces.push(format!("<0x{b:02X}>"));
            kinds.push(PieceKind::Byte);
        }
        for p in [
            "▁t", "he", "▁the", "▁a", "in", "ing", "▁th", "▁", "t", "h", "e", "a", "i", "n", "g",
            "é",
        ] {
            pieces.push(p.into());
            kinds.push(PieceKind::Normal);
        }
        let scores: Vec<f32> = (0..pieces.len()).map(|i| -(i as f32)).collect();
        SpmTokenizer::new(&pieces, &scores, &kinds).unwrap()
    }

    fn round_trip(t: &SpmTokenizer, input: &[u8]) -> Vec<u32> {
        let ids = t.encode(input).unwrap();
        let mut back = Vec::new();
        t.decode(&ids, &mut back).unwrap();
        assert_eq!(back, input, "{ids:?}");
        ids
    }

    #[test]
    fn merges_best_pairs_and_cuts_at_user_defined_pieces() {
        let t = tiny();
        let id = |p: &str| t.normal[p].0;
        assert_eq!(round_trip(&t, b" the"), vec![id("▁the")]);
        // "\n\n\n" is the longest user-defined piece "\n\n" and then "\n".
        assert_eq!(
            round_trip(&t, b"a\n\n\nthe"),
            vec![id("a"), 3, 2, id("t"), id("he")]
        );
        // "in" scores best, then "ing"; "th" is no piece (only "▁th" is).
        assert_eq!(round_trip(&t, b"thing"), vec![id("t"), id("h"), id("ing")]);
        assert_eq!(round_trip(&t, b" thing"), vec![id("▁th"), id("ing")]);
    }

    #[test]
    fn every_byte_string_comes_back() {
        let t = tiny();
        let cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"\0\0 \r\n\r\n".to_vec(),
            vec![0xff, 0xfe, b'a', 0xc3],
            "▁ the▁▁ ▁the".as_bytes().to_vec(),
            "<bos><0x41>\u{2581}é".as_bytes().to_vec(),
            (0..=255u8).collect(),
            " ".repeat(1000).into_bytes(),
            "\n".repeat(1001).into_bytes(),
        ];
        for c in &cases {
            round_trip(&t, c);
        }
        // A `▁` of the input is spelled in bytes, never read as a space.
        let ids = round_trip(&t, "▁".as_bytes());
        assert_eq!(
            ids,
            "▁"
                .bytes()
                .map(|b| t.byte_token[b as usize])
                .collect::<Vec<_>>()
        );
        // Control pieces are never produced.
        assert!(!round_trip(&t, b"<bos><pad>").contains(&1));
    }

    #[test]
    fn refuses_vocabularies_without_every_byte_and_unknown_ids() {
        let pieces = vec!["a".to_string()];
        assert!(SpmTokenizer::new(&pieces, &[0.0], &[PieceKind::Normal]).is_err());
        let t = tiny();
        let mut out = Vec::new();
        assert!(t.decode(&[1], &mut out).is_err());
        assert!(t.decode(&[u32::MAX], &mut out).is_err());
    }
}
