//! Columnar CSV reading for `coreplex drift`, using every core.
//!
//! The file is memory-mapped and cut into blocks at record boundaries (a newline outside
//! quotes); worker threads take blocks in turn and parse them in place into per-column
//! accumulators (numbers, or category counts), which are concatenated at the end. Row order
//! is irrelevant to every drift statistic, so blocks need no reordering. Memory holds the
//! parsed values; the file's pages stay in the page cache and are released from the process
//! once read.
//!
//! Missing values are pandas' defaults: an empty field or one of `NA_TOKENS`; non-finite
//! numbers (`nan`, `inf`) also count as missing.

use super::{input_error, InputError};
use coreplex_stats::sample::{SampleBuilder, SamplePart};
use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Bytes per block handed to a worker: small enough that the workers finish together.
const BLOCK: usize = 1 << 20;
/// Bytes at the start of the file that hold the header and the rows used to guess types.
const SAMPLE_BYTES: usize = 4 << 20;
/// Rows of the sample used to guess column types.
const SAMPLE_ROWS: usize = 2000;

/// pandas' default `na_values`.
const NA_TOKENS: &[&[u8]] = &[
    b"",
    b"#N/A",
    b"#N/A N/A",
    b"#NA",
    b"-1.#IND",
    b"-1.#QNAN",
    b"-NaN",
    b"-nan",
    b"1.#IND",
    b"1.#QNAN",
    b"<NA>",
    b"N/A",
    b"NA",
    b"NULL",
    b"NaN",
    b"None",
    b"n/a",
    b"nan",
    b"null",
];

/// FxHash (the rustc hasher): category lookups are on the hot path and need no DoS resistance.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut v = [0u8; 8];
            v[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(v) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub(crate) type CategoryMap = HashMap<Vec<u8>, u64, BuildHasherDefault<FxHasher>>;

/// How to read one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Numbers; `strict` makes a non-numeric value an error, otherwise it is remembered so the
    /// column can be re-read as categorical.
    Numeric {
        strict: bool,
    },
    Categorical,
}

/// Column `field` of the file, read as `kind`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub field: usize,
    pub kind: Kind,
    /// Index of the column's name in the file header (for messages).
    pub name_index: usize,
}

/// Parsed values of one column.
// One per column and parsing thread; a boxed piece would put a pointer on the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum ColumnData {
    Numeric {
        /// The piece this worker is filling (exact decimals while it can, see
        /// [`SampleBuilder`]).
        piece: SampleBuilder,
        /// Full pieces and other workers' pieces, kept apart: the sort joins them anyway.
        more: Vec<SamplePart>,
        missing: u64,
        /// First non-numeric value met (only for non-strict numeric columns).
        non_numeric: Option<String>,
    },
    Categorical {
        counts: CategoryMap,
        missing: u64,
    },
}

impl ColumnData {
    fn with_capacity(kind: Kind, rows: usize) -> Self {
        match kind {
            Kind::Numeric { .. } => ColumnData::Numeric {
                piece: SampleBuilder::with_capacity(rows),
                more: Vec::new(),
                missing: 0,
                non_numeric: None,
            },
            Kind::Categorical => ColumnData::Categorical {
                counts: CategoryMap::default(),
                missing: 0,
            },
        }
    }

    fn absorb(&mut self, other: ColumnData) {
        match (self, other) {
            (
                ColumnData::Numeric {
                    more,
                    missing,
                    non_numeric,
                    ..
                },
                ColumnData::Numeric {
                    piece: p2,
                    more: more2,
                    missing: m2,
                    non_numeric: n2,
                },
            ) => {
                more.push(p2.finish());
                more.extend(more2);
                *missing += m2;
                if non_numeric.is_none() {
                    *non_numeric = n2;
                }
            }
            (
                ColumnData::Categorical { counts, missing },
                ColumnData::Categorical {
                    counts: c2,
                    missing: m2,
                },
            ) => {
                if counts.is_empty() {
                    *counts = c2;
                } else {
                    for (k, n) in c2 {
                        *counts.entry(k).or_insert(0) += n;
                    }
                }
                *missing += m2;
            }
            _ => unreachable!("workers build columns from the same plan"),
        }
    }
}

/// Result of reading a file with a plan.
pub(crate) struct Columns {
    pub columns: Vec<ColumnData>,
    pub rows: u64,
}

/// A CSV file whose header has been read.
pub(crate) struct Source {
    pub path: PathBuf,
    pub header: Vec<String>,
    bytes: FileBytes,
    /// Byte offset where data rows start.
    data_start: usize,
    /// End of the whole records within the first `SAMPLE_BYTES`, for type guessing.
    sample_end: usize,
}

/// A file's bytes: mapped, so workers parse the page cache in place (no copy through read
/// buffers, no reader thread); read into memory when the file cannot be mapped (a pipe).
enum FileBytes {
    Mapped(memmap2::Mmap),
    Read(Vec<u8>),
}

impl FileBytes {
    fn load(path: &Path) -> Result<FileBytes, InputError> {
        let shown = path.display();
        let mut file =
            File::open(path).map_err(|e| input_error(format!("cannot open {shown}: {e}")))?;
        let mappable = file.metadata().is_ok_and(|m| m.is_file() && m.len() > 0);
        if mappable {
            // SAFETY: the map is only read, and only while `self` lives. Mapping is unsafe
            // because another process could change or truncate the file meanwhile; the input
            // files of an offline report are not expected to change while it runs (a
            // truncation would end the process with SIGBUS, as it would `grep`'s).
            if let Ok(map) = unsafe { memmap2::Mmap::map(&file) } {
                return Ok(FileBytes::Mapped(map));
            }
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| input_error(format!("cannot read {shown}: {e}")))?;
        Ok(FileBytes::Read(bytes))
    }

    fn bytes(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(map) => map,
            FileBytes::Read(bytes) => bytes,
        }
    }

    /// Drop the pages read so far from the process (they stay in the page cache and are mapped
    /// again if read again), so the two files are not resident at once.
    fn release(&self) {
        if let FileBytes::Mapped(map) = self {
            // SAFETY: the map is read-only and file-backed, so `MADV_DONTNEED` only unmaps
            // pages: a later read faults in the file's same bytes.
            let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }

    /// [`FileBytes::release`] for `part` of the bytes, by the worker that parsed it: the
    /// unmapping is shared by the workers instead of done by one thread at the end. A page
    /// shared with a neighbouring part that is still being read is simply mapped again.
    fn release_part(&self, part: &[u8]) {
        if let FileBytes::Mapped(map) = self {
            let offset = part.as_ptr() as usize - map.as_ptr() as usize;
            // SAFETY: as in `release`; `part` lies within the map.
            let _ = unsafe {
                map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, part.len())
            };
        }
    }
}

impl Source {
    pub fn open(path: &Path) -> Result<Source, InputError> {
        let shown = path.display();
        let bytes = FileBytes::load(path)?;
        let all = bytes.bytes();
        let first = &all[..all.len().min(SAMPLE_BYTES)];
        if first.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(input_error(format!(
                "{shown} is empty: expected a CSV header and rows"
            )));
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(first);
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| input_error(format!("{shown}: cannot read the CSV header: {e}")))?
            .iter()
            .map(|h| h.trim().to_owned())
            .collect();
        let data_start = reader.position().byte() as usize;
        let sample_end =
            last_record_end(&first[data_start..], false).map_or(first.len(), |e| data_start + e);
        let mut seen = std::collections::HashSet::new();
        for h in &header {
            if !seen.insert(h) {
                return Err(input_error(format!(
                    "{shown}: column '{h}' appears twice in the header"
                )));
            }
        }
        bytes.release();
        Ok(Source {
            path: path.to_owned(),
            header,
            bytes,
            data_start,
            sample_end,
        })
    }

    fn sample(&self) -> &[u8] {
        &self.bytes.bytes()[self.data_start..self.sample_end]
    }

    /// For each field: did the first rows hold a value that is neither missing nor a number?
    pub fn sample_non_numeric(&self) -> Vec<bool> {
        let mut flags = vec![false; self.header.len()];
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(self.sample());
        let mut record = csv::ByteRecord::new();
        let mut rows = 0;
        while rows < SAMPLE_ROWS && matches!(reader.read_byte_record(&mut record), Ok(true)) {
            for (flag, field) in flags.iter_mut().zip(record.iter()) {
                if !*flag && matches!(parse_number(field), Parsed::NotNumber) {
                    *flag = true;
                }
            }
            rows += 1;
        }
        flags
    }

    /// Read the columns in `plans` from every data row, on `workers` threads (this one
    /// included).
    pub fn read(&self, plans: &[Plan], workers: usize) -> Result<Columns, InputError> {
        let shown = self.path.display().to_string();
        let data = &self.bytes.bytes()[self.data_start..];
        let workers = workers.max(1);
        let failed = AtomicBool::new(false);
        // Reserve each worker's share of the rows the file probably has (from the bytes per
        // row of the sample); a worker that gets more continues in further pieces.
        let sample = self.sample();
        let sample_rows = sample.iter().filter(|&&b| b == b'\n').count().max(1);
        let expected_rows =
            (data.len() as f64 * sample_rows as f64 / sample.len().max(1) as f64) as usize;
        let ctx = WorkerContext {
            plans,
            fields: self.header.len(),
            rows_per_worker: expected_rows / workers + 1024,
            piece_rows: expected_rows / (8 * workers) + 1024,
            header: &self.header,
            path: &shown,
            failed: &failed,
            bytes: &self.bytes,
        };
        let blocks = Mutex::new(Blocks { data, next: 0 });
        let result = std::thread::scope(|scope| {
            let handles: Vec<_> = (1..workers)
                .map(|_| scope.spawn(|| worker(&blocks, &ctx)))
                .collect();
            let mut merged = worker(&blocks, &ctx);
            for h in handles {
                let part = h.join().expect("CSV worker panicked");
                merged = match (merged, part) {
                    (Ok(mut m), Ok(part)) => {
                        m.rows += part.rows;
                        for (col, other) in m.columns.iter_mut().zip(part.columns) {
                            col.absorb(other);
                        }
                        Ok(m)
                    }
                    (Err(e), _) | (Ok(_), Err(e)) => Err(e),
                };
            }
            merged
        });
        // The workers released their blocks; what is left are the pages two blocks share.
        self.bytes.release();
        result
    }
}

/// Hands out the data in blocks cut at record boundaries, in file order.
struct Blocks<'a> {
    data: &'a [u8],
    next: usize,
}

/// A block of whole records; `plain` when it has no quote and no lone `\r` (the fast path).
struct Block<'a> {
    bytes: &'a [u8],
    plain: bool,
}

impl<'a> Blocks<'a> {
    fn next_block(&mut self) -> Option<Block<'a>> {
        let start = self.next;
        if start >= self.data.len() {
            return None;
        }
        let mut len = BLOCK;
        loop {
            let end = (start + len).min(self.data.len());
            let window = &self.data[start..end];
            // One scan finds out whether the block needs any of the slower checks.
            let special = has_quote_or_cr(window);
            let cut = if end == self.data.len() {
                Some(window.len())
            } else {
                last_record_end(window, special)
            };
            if let Some(cut) = cut {
                self.next = start + cut;
                let bytes = &window[..cut];
                let plain = !special || !(bytes.contains(&b'"') || has_lone_cr(bytes));
                return Some(Block { bytes, plain });
            }
            // One record longer than a block: look further.
            len *= 2;
        }
    }
}

/// Whether `block` holds a `"` or a `\r`: a branch-free pass per 4 KB that the compiler turns
/// into vector compares.
fn has_quote_or_cr(block: &[u8]) -> bool {
    block.chunks(4096).any(|chunk| {
        chunk.iter().fold(0u8, |acc, &b| {
            acc | u8::from(b == b'"') | u8::from(b == b'\r')
        }) != 0
    })
}

/// Index just past the last newline that ends a record (outside quotes), if any. Blocks start
/// at a record boundary, so quote parity starts even.
fn last_record_end(block: &[u8], may_have_quotes: bool) -> Option<usize> {
    if !may_have_quotes || !block.contains(&b'"') {
        return block.iter().rposition(|&b| b == b'\n').map(|i| i + 1);
    }
    let mut in_quotes = false;
    let mut last = None;
    for (i, &b) in block.iter().enumerate() {
        match b {
            b'"' => in_quotes = !in_quotes,
            b'\n' if !in_quotes => last = Some(i + 1),
            _ => {}
        }
    }
    last
}

struct WorkerContext<'a> {
    plans: &'a [Plan],
    fields: usize,
    rows_per_worker: usize,
    /// Capacity of each further piece of a numeric column (see [`room`]).
    piece_rows: usize,
    header: &'a [String],
    path: &'a str,
    failed: &'a AtomicBool,
    /// The file, whose pages each worker releases once parsed.
    bytes: &'a FileBytes,
}

fn worker(blocks: &Mutex<Blocks<'_>>, ctx: &WorkerContext<'_>) -> Result<Columns, InputError> {
    let mut columns: Vec<ColumnData> = ctx
        .plans
        .iter()
        .map(|p| ColumnData::with_capacity(p.kind, ctx.rows_per_worker))
        .collect();
    let mut rows = 0u64;
    let mut record = csv::ByteRecord::new();
    // Another worker's error ends the read; its result is not used.
    while !ctx.failed.load(Ordering::Relaxed) {
        let Some(block) = blocks.lock().expect("CSV worker panicked").next_block() else {
            break;
        };
        let parsed = if block.plain {
            parse_plain_chunk(block.bytes, ctx, &mut columns, &mut rows)
        } else {
            parse_csv_chunk(block.bytes, ctx, &mut columns, &mut rows, &mut record)
        };
        if let Err(e) = parsed {
            ctx.failed.store(true, Ordering::Relaxed);
            return Err(e);
        }
        ctx.bytes.release_part(block.bytes);
    }
    Ok(Columns { columns, rows })
}

/// General path: the `csv` crate's `ByteRecord` reader (quotes, escapes, embedded newlines).
fn parse_csv_chunk(
    chunk: &[u8],
    ctx: &WorkerContext<'_>,
    columns: &mut [ColumnData],
    rows: &mut u64,
    record: &mut csv::ByteRecord,
) -> Result<(), InputError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(chunk);
    loop {
        match reader.read_byte_record(record) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => return Err(input_error(format!("{}: invalid CSV: {e}", ctx.path))),
        }
        if record.len() != ctx.fields {
            return Err(wrong_field_count(ctx, record.len()));
        }
        *rows += 1;
        for (plan, column) in ctx.plans.iter().zip(columns.iter_mut()) {
            push_field(plan, column, &record[plan.field], ctx, false)?;
        }
    }
}

/// Fast path for blocks without any quote character, where CSV is exactly "records end at
/// `\n` (or `\r\n`), fields end at commas" — what the `csv` crate reads from such blocks,
/// blank lines skipped. One cursor walks the block; numbers are parsed in place, so each byte
/// of a numeric field is looked at once.
fn parse_plain_chunk(
    chunk: &[u8],
    ctx: &WorkerContext<'_>,
    columns: &mut [ColumnData],
    rows: &mut u64,
) -> Result<(), InputError> {
    parse_plain_chunk_with(chunk, ctx, columns, rows, has_ssse3())
}

/// [`parse_plain_chunk`], with the SSSE3 number parse or without (`ssse3` only if the
/// processor has it).
fn parse_plain_chunk_with(
    chunk: &[u8],
    ctx: &WorkerContext<'_>,
    columns: &mut [ColumnData],
    rows: &mut u64,
    ssse3: bool,
) -> Result<(), InputError> {
    // Which plan (if any) reads each field of a record.
    let mut plan_of_field: Vec<Option<usize>> = vec![None; ctx.fields];
    for (k, plan) in ctx.plans.iter().enumerate() {
        plan_of_field[plan.field] = Some(k);
    }
    let mut recent: Vec<Option<RecentCategories>> = ctx
        .plans
        .iter()
        .map(|p| (p.kind == Kind::Categorical).then(RecentCategories::new))
        .collect();
    let plans = &plan_of_field;
    let result = if ssse3 {
        let parse = || parse_plain_records::<true>(chunk, ctx, columns, rows, plans, &mut recent);
        // SAFETY: the processor has SSSE3.
        unsafe { with_ssse3(parse) }
    } else {
        parse_plain_records::<false>(chunk, ctx, columns, rows, plans, &mut recent)
    };
    for (column, r) in columns.iter_mut().zip(recent) {
        if let (ColumnData::Categorical { counts, .. }, Some(r)) = (column, r) {
            r.flush_into(counts);
        }
    }
    result
}

/// Whether the processor has SSSE3, which [`simd::parse_short_decimal`] needs.
fn has_ssse3() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("ssse3");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// `f` compiled for SSSE3 (it is inlined here), for [`simd::parse_short_decimal`].
///
/// # Safety
/// The processor must have SSSE3 ([`has_ssse3`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3")]
unsafe fn with_ssse3<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn with_ssse3<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// The single-cursor parse of the records of a block; `SSSE3` only inside [`with_ssse3`].
#[inline(always)]
fn parse_plain_records<const SSSE3: bool>(
    chunk: &[u8],
    ctx: &WorkerContext<'_>,
    columns: &mut [ColumnData],
    rows: &mut u64,
    plan_of_field: &[Option<usize>],
    recent: &mut [Option<RecentCategories>],
) -> Result<(), InputError> {
    let n = chunk.len();
    let mut pos = 0;
    while pos < n {
        match chunk[pos] {
            b'\n' => {
                pos += 1;
                continue;
            }
            b'\r' if chunk.get(pos + 1) == Some(&b'\n') => {
                pos += 2;
                continue;
            }
            _ => {}
        }
        let mut field = 0;
        loop {
            let plan_index = plan_of_field.get(field).copied().flatten();
            field += 1;
            // Numeric fast path: a number followed by a separator.
            if let Some(k) = plan_index {
                if let ColumnData::Numeric { piece, more, .. } = &mut columns[k] {
                    // The common shape goes straight to the piece as an exact decimal.
                    let negative = chunk.get(pos) == Some(&b'-');
                    let start = pos + usize::from(negative);
                    // (A safe call on other architectures.)
                    #[allow(unused_unsafe)]
                    let short = if SSSE3 {
                        // SAFETY: only instantiated inside `with_ssse3`.
                        unsafe { simd::parse_short_decimal(chunk, negative, start) }
                    } else {
                        parse_short_decimal(chunk, negative, start)
                    };
                    if let Some((mantissa, decimals, end)) = short {
                        if let Some((more_fields, next)) = separator_at(chunk, end) {
                            room(piece, more, ctx.piece_rows).push_decimal(mantissa, decimals);
                            pos = next;
                            if more_fields {
                                continue;
                            }
                            break;
                        }
                    } else if let Some((v, used)) = parse_decimal_general(&chunk[pos..]) {
                        if let Some((more_fields, next)) = separator_at(chunk, pos + used) {
                            room(piece, more, ctx.piece_rows).push(v);
                            pos = next;
                            if more_fields {
                                continue;
                            }
                            break;
                        }
                    }
                }
            }
            // Any other field: up to the next comma or end of line.
            let (end, more, next) = field_end(chunk, pos);
            let value = &chunk[pos..end];
            if let Some(k) = plan_index {
                let cached = match (&mut columns[k], &mut recent[k]) {
                    (ColumnData::Categorical { missing, .. }, _) if value.is_empty() => {
                        *missing += 1;
                        true
                    }
                    (ColumnData::Categorical { .. }, Some(r)) => r.count(chunk, pos, end),
                    _ => false,
                };
                if !cached {
                    // A numeric field here has been tried by the fast paths already.
                    push_field(&ctx.plans[k], &mut columns[k], value, ctx, true)?;
                }
            }
            pos = next;
            if !more {
                break;
            }
        }
        if field != ctx.fields {
            return Err(wrong_field_count(ctx, field));
        }
        *rows += 1;
    }
    Ok(())
}

/// Where the field starting at `pos` of a quote-free block ends: its end, whether a comma
/// follows (more fields) and where the next field or record starts. A `\r` in such a block is
/// always followed by `\n` (blocks with a lone `\r` go to the `csv` crate).
#[inline(always)]
fn field_end(chunk: &[u8], pos: usize) -> (usize, bool, usize) {
    if let Some(len) = separator_within_16(chunk, pos) {
        let end = pos + len;
        return match chunk[end] {
            b',' => (end, true, end + 1),
            b'\n' => (end, false, end + 1),
            _ => (end, false, end + 2),
        };
    }
    let end = chunk[pos..]
        .iter()
        .position(|&b| b == b',' || b == b'\n')
        .map_or(chunk.len(), |e| pos + e);
    if chunk.get(end) == Some(&b',') {
        return (end, true, end + 1);
    }
    let value_end = if end > pos && chunk[end - 1] == b'\r' {
        end - 1
    } else {
        end
    };
    (value_end, false, end + 1)
}

/// Counts of the categories of one column met in a block, for values of 1–15 bytes: each value
/// is one 16-byte key (its bytes and its length), found by one multiplicative hash and a short
/// linear probe, with no allocation, string comparison or missing-token check for a value seen
/// before. Values that do not fit (long, or a full table) go to the column's map.
struct RecentCategories {
    /// `(key, count)`; key 0 is an empty slot (a key's length byte is never 0).
    slots: Vec<(u128, u64)>,
}

impl RecentCategories {
    const SLOTS: usize = 256;
    const PROBES: usize = 8;

    fn new() -> Self {
        RecentCategories {
            slots: vec![(0, 0); Self::SLOTS],
        }
    }

    /// Count the value `chunk[start..end]` if it fits; `false` if the caller must count it in
    /// the map.
    #[inline]
    fn count(&mut self, chunk: &[u8], start: usize, end: usize) -> bool {
        let value = &chunk[start..end];
        if value.is_empty() || value.len() > 15 {
            return false;
        }
        // The key is the value's bytes, zero-padded, with its length in the last byte: one
        // 16-byte load, masked, when the block goes on that far (a byte-wise copy followed by
        // a wide load would stall on store forwarding).
        let key = match chunk.get(start..start + 16) {
            Some(window) => {
                let word = u128::from_le_bytes(window.try_into().expect("16 bytes"));
                word & ((1u128 << (8 * value.len())) - 1)
            }
            None => {
                let mut bytes = [0u8; 16];
                bytes[..value.len()].copy_from_slice(value);
                u128::from_le_bytes(bytes)
            }
        } | ((value.len() as u128) << 120);
        let mixed =
            (key as u64 ^ ((key >> 64) as u64).rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let start = (mixed >> 56) as usize;
        for probe in 0..Self::PROBES {
            let slot = &mut self.slots[(start + probe) % Self::SLOTS];
            if slot.0 == key {
                slot.1 += 1;
                return true;
            }
            if slot.0 == 0 {
                if is_missing_token(value) {
                    return false;
                }
                *slot = (key, 1);
                return true;
            }
        }
        false
    }

    fn flush_into(self, counts: &mut CategoryMap) {
        for (key, n) in self.slots.into_iter().filter(|s| s.0 != 0) {
            let bytes = key.to_le_bytes();
            let value = &bytes[..bytes[15] as usize];
            match counts.get_mut(value) {
                Some(c) => *c += n,
                None => {
                    counts.insert(value.to_vec(), n);
                }
            }
        }
    }
}

/// Whether a field ends at `end`: `Some((true, next))` after a comma, `Some((false, next))` at
/// the end of the line (`\n`, `\r\n` or the end of the block), `None` if the field goes on.
#[inline]
fn separator_at(chunk: &[u8], end: usize) -> Option<(bool, usize)> {
    match chunk.get(end) {
        Some(b',') => Some((true, end + 1)),
        Some(b'\n') | None => Some((false, end + 1)),
        Some(b'\r') if chunk.get(end + 1) == Some(&b'\n') => Some((false, end + 2)),
        _ => None,
    }
}

/// A `\r` not followed by `\n` ends a record for the `csv` crate; leave such blocks to it.
fn has_lone_cr(chunk: &[u8]) -> bool {
    chunk.contains(&b'\r')
        && chunk
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'\r' && chunk.get(i + 1) != Some(&b'\n'))
}

fn wrong_field_count(ctx: &WorkerContext<'_>, found: usize) -> InputError {
    input_error(format!(
        "{}: a row has {found} fields but the header has {}",
        ctx.path, ctx.fields
    ))
}

/// Add one field's value to its column (`fast_tried`: the fast number parses have failed
/// on it already).
#[inline]
fn push_field(
    plan: &Plan,
    column: &mut ColumnData,
    field: &[u8],
    ctx: &WorkerContext<'_>,
    fast_tried: bool,
) -> Result<(), InputError> {
    match column {
        ColumnData::Numeric {
            piece,
            more,
            missing,
            non_numeric,
        } => match if fast_tried {
            parse_number_slow(field)
        } else {
            parse_number(field)
        } {
            Parsed::Value(v) => room(piece, more, ctx.piece_rows).push(v),
            Parsed::Missing => *missing += 1,
            Parsed::NotNumber => {
                let text = String::from_utf8_lossy(field).into_owned();
                if plan.kind == (Kind::Numeric { strict: true }) {
                    return Err(input_error(format!(
                        "{}: column '{}' has the non-numeric value '{}' but was declared numeric with --numeric",
                        ctx.path, ctx.header[plan.name_index], text
                    )));
                }
                non_numeric.get_or_insert(text);
            }
        },
        ColumnData::Categorical { counts, missing } => {
            if is_missing_token(field) {
                *missing += 1;
            } else if let Some(c) = counts.get_mut(field) {
                *c += 1;
            } else {
                counts.insert(field.to_vec(), 1);
            }
        }
    }
    Ok(())
}

/// The piece to append a value to, never growing it: a full piece joins `more` and a fresh
/// one of `piece_rows` takes over (the sort joins the pieces anyway, and growing would copy
/// the column and touch twice its memory).
#[inline(always)]
fn room<'p>(
    piece: &'p mut SampleBuilder,
    more: &mut Vec<SamplePart>,
    piece_rows: usize,
) -> &'p mut SampleBuilder {
    if piece.is_full() {
        start_piece(piece, more, piece_rows);
    }
    piece
}

#[cold]
#[inline(never)]
fn start_piece(piece: &mut SampleBuilder, more: &mut Vec<SamplePart>, piece_rows: usize) {
    let fresh = SampleBuilder::with_capacity(piece_rows.max(1));
    let full = std::mem::replace(piece, fresh);
    if !full.is_empty() {
        more.push(full.finish());
    }
}

enum Parsed {
    Value(f64),
    Missing,
    NotNumber,
}

#[inline]
fn parse_number(field: &[u8]) -> Parsed {
    if let Some((v, used)) = parse_decimal_prefix(field) {
        if used == field.len() {
            return Parsed::Value(v);
        }
    }
    parse_number_slow(field)
}

/// [`parse_number`] without its fast path: numbers of more than 15 digits (as `repr` writes
/// them), blanks around a number, missing-value tokens, text.
#[cold]
fn parse_number_slow(field: &[u8]) -> Parsed {
    let t = field.trim_ascii();
    if t.is_empty() {
        return Parsed::Missing;
    }
    let parsed = std::str::from_utf8(t)
        .ok()
        .and_then(|s| s.parse::<f64>().ok());
    match parsed {
        Some(v) if v.is_finite() => Parsed::Value(v),
        Some(_) => Parsed::Missing,
        None if is_missing_token(t) => Parsed::Missing,
        None => Parsed::NotNumber,
    }
}

/// The byte `b` repeated in every lane of an 8-byte word.
const fn lanes(b: u8) -> u64 {
    u64::from_le_bytes([b; 8])
}

/// 0x80 in each byte of `w` that equals `b`, 0 elsewhere (exact: no carry crosses a byte).
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn lanes_equal(w: u64, b: u8) -> u64 {
    let x = w ^ lanes(b);
    !(((x & lanes(0x7F)) + lanes(0x7F)) | x) & lanes(0x80)
}

/// Offset of the first `,`, `\n` or `\r` in the 16 bytes at `pos`, looked for in the whole
/// window at once (no loop exit to mispredict per byte); `None` if there is none or fewer
/// than 16 bytes are left.
#[inline(always)]
fn separator_within_16(chunk: &[u8], pos: usize) -> Option<usize> {
    let window: &[u8; 16] = chunk.get(pos..pos + 16)?.try_into().expect("16 bytes");
    first_separator(window)
}

/// SSE2 is part of x86-64: one compare per separator.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn first_separator(window: &[u8; 16]) -> Option<usize> {
    use std::arch::x86_64::*;
    // SAFETY: the load reads the 16 bytes of the window; SSE2 is always available.
    let found = unsafe {
        let v = _mm_loadu_si128(window.as_ptr().cast());
        let comma = _mm_cmpeq_epi8(v, _mm_set1_epi8(b',' as i8));
        let lf = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8));
        let cr = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\r' as i8));
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(comma, lf), cr)) as u32
    };
    (found != 0).then(|| found.trailing_zeros() as usize)
}

/// Elsewhere a word at a time.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn first_separator(window: &[u8; 16]) -> Option<usize> {
    let separators = |w: u64| lanes_equal(w, b',') | lanes_equal(w, b'\n') | lanes_equal(w, b'\r');
    let low = separators(u64::from_le_bytes(window[..8].try_into().expect("8 bytes")));
    let high = separators(u64::from_le_bytes(window[8..].try_into().expect("8 bytes")));
    // Both words at once: whether the separator is in the first or the second varies from
    // field to field (`level_7` and `level_15`), a branch on it would be mispredicted.
    let found = u128::from(low) | (u128::from(high) << 64);
    (found != 0).then(|| (found.trailing_zeros() / 8) as usize)
}

/// The leading run of decimal digits of the 8 bytes at `at`: its length (8 if all are
/// digits) and, when shorter than 8, its value. Found for the whole word at once, so a run of
/// varying length costs no mispredicted loop exit.
#[inline(always)]
fn digit_run(s: &[u8], at: usize) -> Option<(u32, u64)> {
    let w = u64::from_le_bytes(s.get(at..at + 8)?.try_into().ok()?);
    let x = w ^ lanes(b'0');
    // 0x80 in every byte that is not a digit (`b ^ '0'` of 10 or more).
    let other = (((x & lanes(0x7F)) + lanes(0x76)) | x) & lanes(0x80);
    let len = other.trailing_zeros() / 8;
    // Right-align the run's digits; the bytes after it are shifted out.
    let digits = x.checked_shl(8 * (8 - len)).unwrap_or(0);
    Some((len, eight_digits(digits)))
}

/// The value of eight decimal digits, one per byte (values 0–9), the first byte most
/// significant: pairs, then quadruples, then the two halves, one multiply each.
#[inline(always)]
fn eight_digits(x: u64) -> u64 {
    let x = (x & 0x000F_000F_000F_000F) * 10 + ((x >> 8) & 0x000F_000F_000F_000F);
    let x = (x & 0x0000_00FF_0000_00FF) * 100 + ((x >> 16) & 0x0000_00FF_0000_00FF);
    (x & 0x0000_FFFF) * 10_000 + (x >> 32)
}

const POW10_INT: [u64; 8] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/// [`parse_decimal_prefix`] for the most common shape, `digits[.digits]` (after the sign at
/// `start`) with fewer than 8 digits on each side and no exponent, both runs read a word at a
/// time: the exact decimal as its signed mantissa (at most 14 digits) and number of
/// decimals, and where it ends.
#[inline(always)]
fn parse_short_decimal(s: &[u8], negative: bool, start: usize) -> Option<(i64, u32, usize)> {
    let (int_len, int_value) = digit_run(s, start).filter(|r| r.0 < 8)?;
    // `end` stays inside the word just read.
    let mut end = start + int_len as usize;
    let (mut frac_len, mut mantissa) = (0, int_value);
    if s[end] == b'.' {
        let (len, value) = digit_run(s, end + 1).filter(|r| r.0 < 8)?;
        (frac_len, mantissa) = (len, int_value * POW10_INT[len as usize] + value);
        end += 1 + len as usize;
    }
    if int_len + frac_len == 0 || (s[end] | 0x20) == b'e' {
        return None;
    }
    // The sign without a branch: in a centred column it is a coin toss per value.
    let sign = -i64::from(negative);
    Some(((mantissa as i64 ^ sign) - sign, frac_len, end))
}

/// [`parse_short_decimal`] with one 16-byte window per number: its digits found by one
/// compare and converted by three multiply-adds, instead of two 8-byte words each checked
/// and converted on their own.
#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    /// For an integer run of `a` digits and a fraction run of `b` digits after a dot at
    /// byte `a` (both below 8), entry `8a + b` moves the `a + b` digits to the end of the
    /// register in order, and zeroes the bytes before them.
    const DIGIT_MASKS: [[u8; 16]; 64] = {
        let mut masks = [[0x80u8; 16]; 64];
        let mut a = 0;
        while a < 8 {
            let mut b = 0;
            while b < 8 {
                let total = a + b;
                let mut i = 0;
                while i < total {
                    let source = if i < a { i } else { i + 1 };
                    masks[a * 8 + b][16 - total + i] = source as u8;
                    i += 1;
                }
                b += 1;
            }
            a += 1;
        }
        masks
    };

    /// # Safety
    /// The processor must have SSSE3 (the caller is compiled for it).
    #[inline(always)]
    pub(super) unsafe fn parse_short_decimal(
        s: &[u8],
        negative: bool,
        start: usize,
    ) -> Option<(i64, u32, usize)> {
        let Some(window) = s.get(start..start + 16) else {
            // The last bytes of a block.
            return super::parse_short_decimal(s, negative, start);
        };
        // SAFETY: the window has 16 bytes; the caller guarantees SSSE3.
        unsafe {
            let v = _mm_loadu_si128(window.as_ptr().cast());
            let d = _mm_sub_epi8(v, _mm_set1_epi8(b'0' as i8));
            let is_digit = _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d);
            // Bits 16 and up are set: no run is longer than the window.
            let other = !(_mm_movemask_epi8(is_digit) as u32);
            let int_len = other.trailing_zeros();
            if int_len >= 8 {
                return None;
            }
            let (frac_len, end) = if window[int_len as usize] == b'.' {
                let frac_len = (other >> (int_len + 1)).trailing_zeros();
                if frac_len >= 8 {
                    return None;
                }
                (frac_len, int_len + 1 + frac_len)
            } else {
                (0, int_len)
            };
            // `end` is at most 15: inside the window.
            if int_len + frac_len == 0 || (window[end as usize] | 0x20) == b'e' {
                return None;
            }
            let mask = &DIGIT_MASKS[(int_len * 8 + frac_len) as usize];
            let digits = _mm_shuffle_epi8(d, _mm_loadu_si128(mask.as_ptr().cast()));
            // Pairs, quadruples, then two runs of eight digits.
            let pairs = _mm_maddubs_epi16(digits, _mm_set1_epi16(0x010A));
            let quads = _mm_madd_epi16(pairs, _mm_set1_epi32(0x0001_0064));
            let quads = _mm_packs_epi32(quads, quads);
            let eights = _mm_madd_epi16(quads, _mm_set1_epi32(0x0001_2710));
            let both = _mm_cvtsi128_si64(eights) as u64;
            let mantissa = (both & 0xFFFF_FFFF) * 100_000_000 + (both >> 32);
            let sign = -i64::from(negative);
            Some((
                (mantissa as i64 ^ sign) - sign,
                frac_len,
                start + end as usize,
            ))
        }
    }
}

/// Elsewhere the portable parse.
#[cfg(not(target_arch = "x86_64"))]
mod simd {
    pub(super) use super::parse_short_decimal;
}

/// Exact powers of ten representable in an f64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Fast path for the common number shapes (`-12.345`, `7`, `1.5e-3`) at the start of `s`;
/// returns the value and the bytes used, stopping at the first byte that cannot continue the
/// number (the caller checks what follows). When the significant digits fit in 2^53 and the
/// decimal exponent is at most 22 in size, `digits × 10^e` (or `÷ 10^−e`) is one correctly
/// rounded operation on exact operands, hence exactly the correctly rounded value `str::parse`
/// returns (Clinger's fast path). Anything else returns `None` and goes through `str::parse`.
#[inline(always)]
fn parse_decimal_prefix(s: &[u8]) -> Option<(f64, usize)> {
    let negative = *s.first()? == b'-';
    if let Some((mantissa, decimals, end)) = parse_short_decimal(s, negative, usize::from(negative))
    {
        // Below 2^53, so the signed conversion (one instruction, unlike the unsigned one) is
        // exact, and the quotient is correctly rounded; `-0` keeps its sign.
        let value = mantissa as f64 / POW10[decimals as usize];
        return Some((if negative { -value.abs() } else { value }, end));
    }
    parse_decimal_general(s)
}

/// [`parse_decimal_prefix`] for every shape the short path leaves.
fn parse_decimal_general(s: &[u8]) -> Option<(f64, usize)> {
    let (negative, mut i) = match *s.first()? {
        b'-' => (true, 1),
        b'+' => (false, 1),
        _ => (false, 0),
    };
    // Digits accumulate with wrapping arithmetic; more than 19 of them (where u64 could
    // overflow) go to the slow path below, so wrapping never changes a returned value.
    let mut mantissa: u64 = 0;
    let int_start = i;
    while let Some(d) = s.get(i).map(|c| c.wrapping_sub(b'0')).filter(|&d| d <= 9) {
        mantissa = mantissa.wrapping_mul(10).wrapping_add(d as u64);
        i += 1;
    }
    let mut digits = i - int_start;
    let mut exponent: i32 = 0;
    if s.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        while let Some(d) = s.get(i).map(|c| c.wrapping_sub(b'0')).filter(|&d| d <= 9) {
            mantissa = mantissa.wrapping_mul(10).wrapping_add(d as u64);
            i += 1;
        }
        digits += i - frac_start;
        exponent = -((i - frac_start) as i32);
    }
    if digits == 0 || digits > 19 {
        return None;
    }
    if s.get(i).is_some_and(|&c| c == b'e' || c == b'E') {
        i += 1;
        let exp_negative = match s.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let exp_start = i;
        let mut e: i32 = 0;
        while let Some(d) = s.get(i).map(|c| c.wrapping_sub(b'0')).filter(|&d| d <= 9) {
            if i - exp_start >= 4 {
                return None;
            }
            e = e * 10 + d as i32;
            i += 1;
        }
        if i == exp_start {
            return None;
        }
        exponent += if exp_negative { -e } else { e };
    }
    if mantissa > (1u64 << 53) {
        return None;
    }
    let m = mantissa as i64 as f64;
    let value = if exponent == 0 {
        m
    } else if (1..=22).contains(&exponent) {
        m * POW10[exponent as usize]
    } else if (-22..0).contains(&exponent) {
        m / POW10[(-exponent) as usize]
    } else if mantissa == 0 {
        0.0
    } else {
        return None;
    };
    Some((if negative { -value } else { value }, i))
}

fn is_missing_token(field: &[u8]) -> bool {
    field.len() <= 8 && NA_TOKENS.contains(&field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_boundaries_respect_quotes() {
        assert_eq!(last_record_end(b"a,b\n1,2\n3,", false), Some(8));
        assert_eq!(last_record_end(b"a,\"x\ny\"\n1,\"p\nq", true), Some(8));
        assert_eq!(last_record_end(b"no newline", false), None);
    }

    #[test]
    fn numbers_and_missing_tokens() {
        assert!(matches!(parse_number(b" 1.5 "), Parsed::Value(v) if v == 1.5));
        assert!(matches!(parse_number(b"-2e3"), Parsed::Value(v) if v == -2000.0));
        for m in [&b""[..], b"NA", b"nan", b"NaN", b"inf", b"null", b"#N/A"] {
            assert!(matches!(parse_number(m), Parsed::Missing), "{m:?}");
        }
        assert!(matches!(parse_number(b"abc"), Parsed::NotNumber));
        assert!(matches!(parse_number(b"true"), Parsed::NotNumber));
    }

    /// The quote-free fast path reads exactly what the `csv` crate reads.
    #[test]
    fn plain_path_matches_csv_crate() {
        // Short rows, then rows long enough for the word-at-a-time paths: repeated, long
        // (over 15 bytes) and missing categories, CRLF endings.
        let mut chunk =
            b"1.5,a,,x\r\n-2e3,b,NA,y\n\n 7 ,a,3,z\n0.25,,4.5e-1,w\r\n\r\n1e5x,c,2,\n3,d,1,\n"
                .to_vec();
        for i in 0..300 {
            let category = [
                "level_1",
                "level_15",
                "a_category_longer_than_16",
                "NA",
                "",
                "x",
            ][i % 6];
            let end = if i % 4 == 0 { "\r\n" } else { "\n" };
            chunk.extend_from_slice(
                format!("{}.{i},{category},{},unread_field_{i}{end}", i % 7, i * 3).as_bytes(),
            );
        }
        chunk.extend_from_slice(b"3,d,1,");
        let chunk = &chunk[..];
        let plans = [
            Plan {
                field: 0,
                kind: Kind::Numeric { strict: false },
                name_index: 0,
            },
            Plan {
                field: 1,
                kind: Kind::Categorical,
                name_index: 1,
            },
            Plan {
                field: 2,
                kind: Kind::Numeric { strict: false },
                name_index: 2,
            },
        ];
        let header: Vec<String> = ["p", "q", "r", "s"].iter().map(|s| s.to_string()).collect();
        let failed = AtomicBool::new(false);
        let ctx = WorkerContext {
            plans: &plans,
            fields: 4,
            rows_per_worker: 0,
            piece_rows: 16,
            header: &header,
            path: "t.csv",
            failed: &failed,
            bytes: &FileBytes::Read(Vec::new()),
        };
        // The `csv` crate, the single cursor without SSSE3 and with it if the processor has it.
        let run = |path: usize| {
            let mut cols: Vec<ColumnData> = plans
                .iter()
                .map(|p| ColumnData::with_capacity(p.kind, 0))
                .collect();
            let mut rows = 0;
            if path > 0 {
                let ssse3 = path == 2 && has_ssse3();
                parse_plain_chunk_with(chunk, &ctx, &mut cols, &mut rows, ssse3).unwrap();
            } else {
                parse_csv_chunk(
                    chunk,
                    &ctx,
                    &mut cols,
                    &mut rows,
                    &mut csv::ByteRecord::new(),
                )
                .unwrap();
            }
            // Category maps compared in a fixed order, numbers as the values they read as.
            let shown: Vec<String> = cols
                .into_iter()
                .map(|c| match c {
                    ColumnData::Categorical { counts, missing } => {
                        let sorted: std::collections::BTreeMap<_, _> = counts.iter().collect();
                        format!("{sorted:?} {missing}")
                    }
                    ColumnData::Numeric {
                        piece,
                        more,
                        missing,
                        non_numeric,
                    } => {
                        let values: Vec<u64> = more
                            .iter()
                            .chain([&piece.finish()])
                            .flat_map(SamplePart::to_values)
                            .map(f64::to_bits)
                            .collect();
                        format!("{values:?} {missing} {non_numeric:?}")
                    }
                })
                .collect();
            (shown, rows)
        };
        assert_eq!(run(1), run(0));
        assert_eq!(run(2), run(0));
        assert_eq!(run(2).1, 307);
        let mut cols: Vec<ColumnData> = plans
            .iter()
            .map(|p| ColumnData::with_capacity(p.kind, 0))
            .collect();
        assert!(parse_plain_chunk(b"1,a,2\n", &ctx, &mut cols, &mut 0).is_err());
    }

    /// The 16-byte window parse reads every shape exactly as the word-at-a-time parse,
    /// the end of a block included.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn window_parse_equals_word_parse() {
        if !has_ssse3() {
            return;
        }
        let mut state: u64 = 29;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 16
        };
        for _ in 0..200_000 {
            let r = next();
            let mut text = String::new();
            if r % 3 == 0 {
                text.push('-');
            }
            let digits = format!("{:020}", next());
            let int = (r >> 2) as usize % 11;
            let frac = (r >> 6) as usize % 11;
            text.push_str(&digits[..int]);
            if (r >> 10) % 4 != 0 {
                text.push('.');
                text.push_str(&digits[10..10 + frac]);
            }
            let ends = [",", "\n", "\r\n", "e5", "E", ".", "x", "", "-"];
            text.push_str(ends[(r >> 13) as usize % ends.len()]);
            // Anything after, or the end of the block.
            let tail = (r >> 17) as usize % 20;
            text.push_str(&",1.5,level_7\n"[..tail.min(13)]);
            let bytes = text.as_bytes();
            let negative = bytes.first() == Some(&b'-');
            let start = usize::from(negative);
            // SAFETY: the processor has SSSE3 (checked above).
            let window = unsafe { simd::parse_short_decimal(bytes, negative, start) };
            assert_eq!(
                window,
                parse_short_decimal(bytes, negative, start),
                "{text:?}"
            );
        }
    }

    #[test]
    fn fast_decimal_path_equals_std_parse() {
        let mut state: u64 = 3;
        let mut cases: Vec<String> = vec![
            "0",
            "-0",
            "+1",
            "1.",
            ".5",
            "-.5",
            "007",
            "1e5",
            "1E-5",
            "2.5e+3",
            "123456789012345678",
            "9007199254740993",
            "0.1",
            "0.000001234",
            "-3.14159",
            "1e22",
            "1e-22",
            "4.9e-324",
            "1e23",
            "12345678901234567890",
            "1.7976931348623157e308",
            "0.30000000000000004",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        for _ in 0..20000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let mantissa = state >> 20;
            let exp = (state % 41) as i32 - 20;
            let digits = (state >> 7) % 17 + 1;
            cases.push(format!("{}e{exp}", mantissa % 10u64.pow(digits as u32)));
            cases.push(format!(
                "{:.*}",
                (state % 9) as usize,
                (mantissa as f64) / 1e6 - 4e6
            ));
        }
        for c in &cases {
            let want: f64 = c.parse().unwrap();
            match parse_decimal_prefix(c.as_bytes()).filter(|&(_, used)| used == c.len()) {
                Some((got, _)) => assert_eq!(got.to_bits(), want.to_bits(), "{c}"),
                None => assert!(
                    matches!(parse_number(c.as_bytes()), Parsed::Value(v) if v.to_bits() == want.to_bits())
                        || !want.is_finite(),
                    "{c}"
                ),
            }
        }
        // Decimals of every length up to 8 digits a side, with room after them for the
        // word-at-a-time path.
        let mut state: u64 = 11;
        for _ in 0..20000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let digits = format!("{:018}", state >> 4);
            let (int, frac) = ((state % 10) as usize, ((state >> 8) % 10) as usize);
            let sign = ["", "-", "+"][(state >> 12) as usize % 3];
            let dot = if frac > 0 || state & (1 << 14) == 0 {
                "."
            } else {
                ""
            };
            let number = format!("{sign}{}{dot}{}", &digits[..int], &digits[9..9 + frac]);
            let Ok(want) = number.parse::<f64>() else {
                continue;
            };
            for tail in [",0000000000000000", "\n", "e3,00000000000000"] {
                let text = format!("{number}{tail}");
                let want = if tail.starts_with('e') {
                    format!("{number}e3").parse::<f64>().unwrap()
                } else {
                    want
                };
                match parse_decimal_prefix(text.as_bytes()) {
                    Some((got, used)) => {
                        assert_eq!(got.to_bits(), want.to_bits(), "{text}");
                        assert_eq!(
                            used,
                            text.len() - tail.len() + 2 * usize::from(tail.starts_with('e')),
                            "{text}"
                        );
                    }
                    None => assert!(int + frac >= 16, "{text}"),
                }
            }
        }
        for bad in ["", "-", ".", "e5", "1e", "1e+", " 1"] {
            assert_eq!(parse_decimal_prefix(bad.as_bytes()), None, "{bad}");
        }
        // A prefix stops where the number does; the caller checks what follows.
        assert_eq!(parse_decimal_prefix(b"1.5,x"), Some((1.5, 3)));
        assert_eq!(parse_decimal_prefix(b"12abc"), Some((12.0, 2)));
        assert_eq!(parse_decimal_prefix(b"1.2.3").map(|p| p.1), Some(3));
    }
}
