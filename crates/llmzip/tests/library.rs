//! The library as another crate uses it: `Encoder` / `Decoder` and the one-call helpers.

use std::io::{Read, Write};

use llmzip::{decode_all, encode_all, Decoder, Encoder, Error, Options};

fn sample() -> Vec<u8> {
    let mut data = b"Streams of text, written in pieces of odd sizes; ".repeat(300);
    data.extend_from_slice(&[0, 0xFF, b'\r', b'\n', 0xC3]);
    data
}

#[test]
fn streaming_and_one_call_paths_agree_and_round_trip() {
    let data = sample();
    // Small blocks, so the encoder and the decoder cross several block boundaries.
    let options = Options::default().block_size(4096);
    let mut encoder = Encoder::new(Vec::new(), &options).unwrap();
    for piece in data.chunks(777) {
        encoder.write_all(piece).unwrap();
    }
    let streamed = encoder.finish().unwrap();
    assert_eq!(streamed, encode_all(&data[..], &options).unwrap());
    assert_eq!(decode_all(&streamed[..]).unwrap(), data);
    // Reading in small pieces.
    let mut decoder = Decoder::new(&streamed[..]).unwrap();
    assert_eq!(
        decoder.header().expect("a model-coded archive").model_name,
        llmzip::unstable::models::DEFAULT_MODEL
    );
    let mut back = Vec::new();
    let mut buf = [0u8; 333];
    loop {
        let n = decoder.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        back.extend_from_slice(&buf[..n]);
    }
    assert_eq!(back, data);
}

#[test]
fn empty_input_and_typed_errors() {
    let archive = encode_all(&b""[..], &Options::default()).unwrap();
    assert!(decode_all(&archive[..]).unwrap().is_empty());
    let full = encode_all(&sample()[..], &Options::default()).unwrap();
    assert!(matches!(
        decode_all(&full[..full.len() - 5]),
        Err(Error::Truncated(_))
    ));
    let mut flipped = full.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    assert!(matches!(decode_all(&flipped[..]), Err(Error::Corrupt(_))));
    assert!(matches!(
        decode_all(&b"not an archive"[..]),
        Err(Error::NotAnArchive)
    ));
    let unknown = Options::default().model("no-such-model");
    assert!(matches!(
        encode_all(&b"x"[..], &unknown),
        Err(Error::Model(_))
    ));
}

/// Weight files through the library: recognise, compress, and read back with `decode_all`; the
/// streaming `Decoder` names the right call for a weight-file archive.
#[test]
fn weight_files_through_the_tensor_codec() {
    let weights = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/gru/model.safetensors"
    ))
    .unwrap();
    let total = weights.len() as u64;
    let (head, layout) = llmzip::tensors::recognise(&mut weights.as_slice(), total).unwrap();
    let layout = layout.expect("the GRU's safetensors file is recognised");
    assert_eq!(layout.container, llmzip::tensors::Container::Safetensors);
    let mut archive = Vec::new();
    let summary = llmzip::tensors::compress(
        &head,
        &layout,
        &weights[head.len()..],
        &mut archive,
        &mut llmzip::Silent,
    )
    .unwrap();
    assert_eq!(summary.archive_len, archive.len() as u64);
    assert!(archive.len() < weights.len());
    assert_eq!(decode_all(archive.as_slice()).unwrap(), weights);

    // The streaming Decoder reads weight-file archives too, in reads of any size.
    let mut decoder = Decoder::new(archive.as_slice()).unwrap();
    assert!(decoder.header().is_none());
    assert_eq!(decoder.layout().unwrap(), &layout);
    let mut back = Vec::new();
    let mut buf = [0u8; 1000];
    loop {
        let n = decoder.read(&mut buf[..777]).unwrap();
        if n == 0 {
            break;
        }
        back.extend_from_slice(&buf[..n]);
    }
    assert_eq!(back, weights);
    assert_eq!(decoder.read(&mut buf).unwrap(), 0, "the end stays the end");

    // A damaged chunk: the bytes before it come out, then an error, and every read after it
    // fails too (never the damaged bytes).
    let mut damaged = archive.clone();
    let at = archive.len() / 2;
    damaged[at] ^= 0x10;
    let mut decoder = Decoder::new(damaged.as_slice()).unwrap();
    let mut out = Vec::new();
    let err = decoder.read_to_end(&mut out).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    assert!(out.len() < weights.len() && weights.starts_with(&out));
    assert!(decoder.read(&mut buf).is_err());
}

/// Regression: `encode_all` on a safetensors file wrote a model's archive (LLMZ) where the
/// command-line tool writes a weight-file one (LLMT); both now go through one orchestrator.
#[test]
fn encode_all_recognises_weight_files_like_the_tool() {
    let weights = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/gru/model.safetensors"
    ))
    .unwrap();
    let archive = encode_all(weights.as_slice(), &Options::default()).unwrap();
    assert_eq!(&archive[..4], b"LLMT");
    assert_eq!(decode_all(archive.as_slice()).unwrap(), weights);
    match llmzip::info(archive.as_slice()).unwrap().remove(0) {
        llmzip::ArchiveDescription::Tensors(s) => {
            assert_eq!(s.original_len, weights.len() as u64)
        }
        other => panic!("{other:?}"),
    }
    // A model named explicitly codes it as bytes.
    let head = &weights[..5000];
    let archive = encode_all(head, &Options::default().model("fast")).unwrap();
    assert_eq!(&archive[..4], b"LLMZ");
    assert_eq!(decode_all(archive.as_slice()).unwrap(), head);
}

/// Levels through the library, the streaming encoder included; an encoder dropped without
/// `finish` leaves an archive that decoders refuse as truncated (it never decodes to part of
/// the input), and an encoder that failed stays failed.
#[test]
fn levels_and_an_encoder_dropped_unfinished() {
    let data = sample();
    let fast = Options::default()
        .level(llmzip::Level::FAST)
        .block_size(4096);
    let archive = encode_all(&data[..], &fast).unwrap();
    let decoder = Decoder::new(&archive[..]).unwrap();
    assert_eq!(decoder.header().unwrap().model_name, "fast1");
    assert_eq!(decode_all(&archive[..]).unwrap(), data);

    let mut encoder = Encoder::new(Vec::new(), &fast).unwrap();
    encoder.write_all(&data).unwrap();
    assert_eq!(encoder.finish().unwrap(), archive);

    // Debug builds panic on the drop, to point at the mistake.
    if !cfg!(debug_assertions) {
        let mut out = Vec::new();
        {
            let mut encoder = Encoder::new(&mut out, &fast).unwrap();
            encoder.write_all(&data).unwrap();
        }
        assert!(out.len() > 100, "full blocks were written");
        assert!(matches!(decode_all(&out[..]), Err(Error::Truncated(_))));
    }

    // A writer that fails: the error surfaces, and every later call fails too.
    struct Failing(usize);
    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.0 < buf.len() {
                return Err(std::io::Error::other("disk full"));
            }
            self.0 -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut encoder = Encoder::new(Failing(200), &fast).unwrap();
    assert!(encoder.write_all(&data).is_err());
    assert!(encoder.write(b"more").is_err());
    assert!(encoder.finish().is_err());
}

/// Regression: after a failed block, a `Decoder` handed out the previous block's bytes on the
/// next read; now every later read fails.
#[test]
fn a_decoder_that_failed_stays_failed() {
    let data = sample();
    let options = Options::default()
        .level(llmzip::Level::FAST)
        .block_size(4096);
    let mut archive = encode_all(&data[..], &options).unwrap();
    let at = archive.len() * 3 / 4;
    archive[at] ^= 0x55;
    let mut decoder = Decoder::new(&archive[..]).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 1000];
    let err = loop {
        match decoder.read(&mut buf) {
            Ok(0) => panic!("a damaged archive decoded to the end"),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => break e,
        }
    };
    assert!(data.starts_with(&out), "unverified bytes came out: {err}");
    assert!(decoder.read(&mut buf).is_err());
    assert!(decoder.read(&mut buf).is_err());
}

/// Archives are sequences of members: archives written one after the other (`cat a.llmz
/// b.llmz`) decode to their originals concatenated, members of different models and of the
/// weight-file codec included, through every reader; anything else after a member is refused.
#[test]
fn concatenated_archives_decode_to_the_concatenation() {
    let a = sample();
    let b = b"Another member, another model.\n".repeat(40);
    let weights = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/gru/model.safetensors"
    ))
    .unwrap();
    let fast = Options::default()
        .level(llmzip::Level::FAST)
        .block_size(4096);
    let mut archive = encode_all(&a[..], &fast).unwrap();
    archive.extend(encode_all(&b[..], &Options::default()).unwrap());
    archive.extend(encode_all(&weights[..], &Options::default()).unwrap());
    archive.extend(encode_all(&b[..], &fast).unwrap());
    let expected = [&a[..], &b[..], &weights[..], &b[..]].concat();

    assert_eq!(decode_all(&archive[..]).unwrap(), expected);
    let mut back = Vec::new();
    let mut decoder = Decoder::new(&archive[..]).unwrap();
    let mut buf = [0u8; 777];
    loop {
        let n = decoder.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        back.extend_from_slice(&buf[..n]);
    }
    assert_eq!(back, expected);
    let members = llmzip::info(&archive[..]).unwrap();
    assert_eq!(members.len(), 4);
    assert!(matches!(members[2], llmzip::ArchiveDescription::Tensors(_)));

    // Garbage after the last member, or a cut member, is refused, by every reader.
    for bad in [
        [&archive[..], &b"junk"[..]].concat(),
        [&archive[..], &b"LL"[..]].concat(),
        archive[..archive.len() - 3].to_vec(),
    ] {
        assert!(decode_all(&bad[..]).is_err());
        assert!(llmzip::info(&bad[..]).is_err());
        let mut out = Vec::new();
        assert!(Decoder::new(&bad[..])
            .unwrap()
            .read_to_end(&mut out)
            .is_err());
    }
}

/// A file of members with a seek table: every reader decodes it whole; `SeekableDecoder` reads
/// any range, from the table or (without a usable one) by walking the members, weight-file
/// members included; tables in the middle (`cat` of two such files) are skipped.
#[test]
fn seekable_reading_matches_the_original_everywhere() {
    use std::io::{Cursor, Seek, SeekFrom};
    let a = sample();
    let b = b"Another member, another model.\n".repeat(100);
    let weights = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/gru/model.safetensors"
    ))
    .unwrap();
    let fast = Options::default().level(llmzip::Level::FAST);
    let split = encode_all(&a[..], &fast.clone().members(1000)).unwrap();
    assert!(split.ends_with(b"LLMS"));
    assert_eq!(decode_all(&split[..]).unwrap(), a);
    let by_table = llmzip::members(&mut Cursor::new(&split)).unwrap();
    assert_eq!(by_table.len(), a.len().div_ceil(1000));
    // Without the table, walking finds the same members.
    let table_len = split.len() - by_table.iter().map(|m| m.archive_len).sum::<u64>() as usize;
    let bare = &split[..split.len() - table_len];
    assert_eq!(llmzip::members(&mut Cursor::new(bare)).unwrap(), by_table);

    // Two seekable files and a weight file, concatenated: the last table covers only its own
    // members, so the reader walks.
    let second = encode_all(&b[..], &fast.clone().members(700)).unwrap();
    let mut file = split.clone();
    file.extend(encode_all(&weights[..], &Options::default()).unwrap());
    file.extend(&second);
    let expected = [&a[..], &weights[..], &b[..]].concat();
    assert_eq!(decode_all(&file[..]).unwrap(), expected);
    let mut whole = Vec::new();
    Decoder::new(&file[..])
        .unwrap()
        .read_to_end(&mut whole)
        .unwrap();
    assert_eq!(whole, expected);

    for archive in [&split[..], bare, &file[..]] {
        let original = decode_all(archive).unwrap();
        let mut reader = llmzip::SeekableDecoder::new(Cursor::new(archive)).unwrap();
        assert_eq!(reader.len(), original.len() as u64);
        // Backwards and forwards, across member boundaries, and past the end.
        let n = original.len();
        for (start, len) in [(n - 10, 30), (0, 5), (999, 2), (1500, 4000), (3, 1), (n, 4)] {
            reader.seek(SeekFrom::Start(start as u64)).unwrap();
            let mut got = Vec::new();
            (&mut reader)
                .take(len as u64)
                .read_to_end(&mut got)
                .unwrap();
            assert_eq!(
                got,
                original[start.min(n)..(start + len).min(n)],
                "{start}+{len}"
            );
        }
        reader.seek(SeekFrom::End(-3)).unwrap();
        let mut tail = Vec::new();
        reader.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, original[n - 3..]);
    }
}

/// A seek table that lies about members (with a valid CRC) is noticed before use and the
/// members are walked instead: reads return the original, never other bytes.
#[test]
fn a_lying_seek_table_is_not_used() {
    use llmzip::unstable::format::seek::SeekTable;
    use std::io::{Cursor, Seek, SeekFrom};
    let a = sample();
    let options = Options::default().level(llmzip::Level::FAST).members(4000);
    let archive = encode_all(&a[..], &options).unwrap();
    let truth = llmzip::members(&mut Cursor::new(&archive)).unwrap();
    let (table, start) = SeekTable::read_from_end(&mut Cursor::new(&archive))
        .unwrap()
        .unwrap();
    let members = &archive[..start as usize];
    for lie in 0..5 {
        let mut t = table.clone();
        match lie {
            0 => t.entries[0].original_len += 1,
            1 => t.entries[1].original_len -= 1,
            2 => {
                t.entries[0].archive_len -= 1;
                t.entries[1].archive_len += 1;
            }
            3 => t.entries.pop().map(drop).unwrap_or(()),
            _ => {
                // Two members listed as one, with the second's length: its trailer agrees.
                let second = t.entries.remove(1);
                t.entries[0].archive_len += second.archive_len;
                t.entries[0].original_len = second.original_len;
            }
        }
        let file = [members, &t.to_bytes().unwrap()[..]].concat();
        assert_eq!(
            llmzip::members(&mut Cursor::new(&file)).unwrap(),
            truth,
            "lie {lie}"
        );
        let mut reader = llmzip::SeekableDecoder::new(Cursor::new(&file)).unwrap();
        for at in [3990u64, 7990, 8005] {
            reader.seek(SeekFrom::Start(at)).unwrap();
            let mut got = Vec::new();
            (&mut reader).take(20).read_to_end(&mut got).unwrap();
            assert_eq!(got, a[at as usize..at as usize + 20], "lie {lie} at {at}");
        }
    }
}

/// How many fast blocks each member of an archive has.
fn fast_blocks(archive: &[u8]) -> Vec<u64> {
    llmzip::info(archive)
        .unwrap()
        .iter()
        .map(|m| match m {
            llmzip::ArchiveDescription::Model(i) => i.fast_blocks,
            llmzip::ArchiveDescription::Tensors(_) => panic!("not a weight file"),
        })
        .collect()
}

/// Every way of compressing at a level sends blocks that are not text to `fast1` (the one-call
/// helper, the streaming encoder, members); a model asked for by name codes them itself. All
/// of them decode.
#[test]
fn binary_blocks_follow_the_level_in_every_api() {
    let binary: Vec<u8> = (0u32..3000).flat_map(|i| (i * 7).to_le_bytes()).collect();
    let level = Options::default();
    let named = Options::default().model("gru4-cm5");
    let mut streamed = Encoder::new(Vec::new(), &level).unwrap();
    streamed.write_all(&binary).unwrap();
    let streamed = streamed.finish().unwrap();
    let members = encode_all(&binary[..], &level.clone().members(5000)).unwrap();
    for (archive, expected) in [
        (encode_all(&binary[..], &level).unwrap(), vec![1]),
        (streamed, vec![1]),
        (members, vec![1, 1, 1]),
        (encode_all(&binary[..], &named).unwrap(), vec![0]),
    ] {
        assert_eq!(fast_blocks(&archive), expected);
        assert_eq!(decode_all(&archive[..]).unwrap(), binary);
    }
}
