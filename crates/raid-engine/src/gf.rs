//! GF(2^8) arithmetic for RAID 6, as md's raid6 uses it: polynomial x^8+x^4+x^3+x^2+1
//! (0x11d), generator 2. P is the XOR of the data columns, Q = Σ gⁱ·Dᵢ over data
//! columns i = 0..k.
//!
//! Q is generated 64 bits at a time (eight bytes multiplied by 2 in one word, Horner's
//! rule from the last column down), in safe code that LLVM vectorises; the byte-table
//! form (`q_bytewise`) is the reference the property tests hold it to. Recovery uses
//! multiplication by a constant through a 256-byte table built per call (a stripe's
//! columns are KiBs long, the table costs 256 lookups).

use crate::xor::xor_into;

const POLY: u16 = 0x11d;

struct Tables {
    /// exp[i] = 2^i, doubled so exp[log a + log b] needs no modulo.
    exp: [u8; 512],
    /// log[a] for a ≠ 0 (log[0] unused).
    log: [u8; 256],
}

const fn build() -> Tables {
    let mut exp = [0u8; 512];
    let mut log = [0u8; 256];
    let mut x: u16 = 1;
    let mut i = 0;
    while i < 255 {
        exp[i] = x as u8;
        exp[i + 255] = x as u8;
        log[x as usize] = i as u8;
        x <<= 1;
        if x & 0x100 != 0 {
            x ^= POLY;
        }
        i += 1;
    }
    exp[510] = exp[0];
    exp[511] = exp[1];
    Tables { exp, log }
}

static T: Tables = build();

/// a·b in GF(2^8).
pub(crate) fn mul(a: u8, b: u8) -> u8 {
    if a == 0 || b == 0 {
        0
    } else {
        T.exp[T.log[a as usize] as usize + T.log[b as usize] as usize]
    }
}

/// 2^e (e taken mod 255).
pub(crate) fn pow2(e: usize) -> u8 {
    T.exp[e % 255]
}

/// 1/a for a ≠ 0.
pub(crate) fn inv(a: u8) -> u8 {
    debug_assert!(a != 0, "0 has no inverse");
    T.exp[255 - T.log[a as usize] as usize]
}

/// `dst ^= c·src` over the common length.
pub(crate) fn mul_acc(dst: &mut [u8], src: &[u8], c: u8) {
    match c {
        0 => {}
        1 => xor_into(dst, src),
        _ => {
            let table: [u8; 256] = std::array::from_fn(|b| mul(c, b as u8));
            for (d, s) in dst.iter_mut().zip(src) {
                *d ^= table[*s as usize];
            }
        }
    }
}

/// `buf = c·buf`.
fn mul_in_place(buf: &mut [u8], c: u8) {
    let table: [u8; 256] = std::array::from_fn(|b| mul(c, b as u8));
    for d in buf {
        *d = table[*d as usize];
    }
}

/// Eight GF(2^8) bytes times 2 in one word.
#[inline(always)]
fn mul2_word(v: u64) -> u64 {
    let hi = v & 0x8080_8080_8080_8080;
    ((v << 1) & 0xfefe_fefe_fefe_fefe) ^ ((hi >> 7) * 0x1d)
}

/// Q = Σ gⁱ·data[i] into `q` (overwritten), 64 bits at a time.
pub fn q_syndrome(q: &mut [u8], data: &[&[u8]]) {
    let Some((last, rest)) = data.split_last() else {
        q.fill(0);
        return;
    };
    q.copy_from_slice(&last[..q.len()]);
    for d in rest.iter().rev() {
        times2_xor(q, d);
    }
}

/// `q = 2·q ^ d`: one Horner step.
fn times2_xor(q: &mut [u8], d: &[u8]) {
    let mut qc = q.chunks_exact_mut(8);
    let mut dc = d.chunks_exact(8);
    for (qw, dw) in (&mut qc).zip(&mut dc) {
        let v = u64::from_ne_bytes((&*qw).try_into().unwrap());
        let x = u64::from_ne_bytes(dw.try_into().unwrap());
        qw.copy_from_slice(&(mul2_word(v) ^ x).to_ne_bytes());
    }
    for (qb, db) in qc.into_remainder().iter_mut().zip(dc.remainder()) {
        *qb = mul(*qb, 2) ^ *db;
    }
}

/// Q by the log/exp tables one byte at a time: the reference for `q_syndrome`.
pub fn q_bytewise(q: &mut [u8], data: &[&[u8]]) {
    q.fill(0);
    for (i, d) in data.iter().enumerate() {
        mul_acc(q, d, pow2(i));
    }
}

/// A stripe's columns in logical order: data columns `0..k`, then P, then Q (RAID 6).
/// `None` marks a column that is erased (unreadable, missing, or not read). Fills in
/// every erased column when the remaining ones determine it; returns false (and
/// changes nothing) when more columns are erased than the parity covers.
/// Every present column must have the same length.
pub(crate) fn solve(cols: &mut [Option<Vec<u8>>], parity: usize) -> bool {
    let k = cols.len() - parity;
    let Some(len) = cols.iter().flatten().map(|c| c.len()).next() else {
        return false;
    };
    let lost: Vec<usize> = (0..k).filter(|&i| cols[i].is_none()).collect();
    let has_p = cols[k].is_some();
    let has_q = parity == 2 && cols[k + 1].is_some();
    match lost.as_slice() {
        [] => {}
        &[x] if has_p => {
            let mut out = cols[k].clone().unwrap();
            for (i, c) in cols[..k].iter().enumerate() {
                if i != x {
                    xor_into(&mut out, c.as_ref().unwrap());
                }
            }
            cols[x] = Some(out);
        }
        &[x] if has_q => {
            // Q ^ Σ_{i≠x} gⁱDᵢ = gˣDₓ.
            let mut out = partial_q(cols, k, &[x], len);
            xor_into(&mut out, cols[k + 1].as_ref().unwrap());
            mul_in_place(&mut out, inv(pow2(x)));
            cols[x] = Some(out);
        }
        &[x, y] if has_p && has_q => {
            // Dx ^ Dy = Pxy, gˣDx ^ gʸDy = Qxy  ⇒  Dx = (g^(y-x)·Pxy ^ g^(-x)·Qxy) / (g^(y-x) ^ 1).
            let mut pxy = cols[k].clone().unwrap();
            for (i, c) in cols[..k].iter().enumerate() {
                if i != x && i != y {
                    xor_into(&mut pxy, c.as_ref().unwrap());
                }
            }
            let mut qxy = partial_q(cols, k, &[x, y], len);
            xor_into(&mut qxy, cols[k + 1].as_ref().unwrap());
            let gyx = pow2(y - x);
            let denom = inv(gyx ^ 1);
            let a = mul(gyx, denom);
            let b = mul(inv(pow2(x)), denom);
            let mut dx = vec![0u8; len];
            mul_acc(&mut dx, &pxy, a);
            mul_acc(&mut dx, &qxy, b);
            xor_into(&mut pxy, &dx);
            cols[x] = Some(dx);
            cols[y] = Some(pxy);
        }
        _ => return false,
    }
    if !has_p || (parity == 2 && !has_q) {
        let data: Vec<&[u8]> = cols[..k].iter().map(|c| c.as_deref().unwrap()).collect();
        let (p, q) = syndromes(&data, parity, len);
        if !has_p {
            cols[k] = Some(p);
        }
        if let (Some(q), false) = (q, has_q) {
            cols[k + 1] = Some(q);
        }
    }
    true
}

/// What a RAID 6 block's two syndromes say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Culprit {
    /// P and Q match the data.
    Consistent,
    /// Exactly one column is wrong and this one explains both syndromes: a data
    /// column `0..k`, P (`k`) or Q (`k + 1`).
    Column(usize),
    /// No single column explains both: more than one is wrong.
    Unknown,
}

/// Locates the one corrupt column of a block, as md's raid6check does: with
/// `p_delta` = stored P ⊕ P of the data and `q_delta` = stored Q ⊕ Q of the data,
/// a data column z wrong by Δ gives p_delta = Δ and q_delta = gᶻ·Δ at every byte,
/// so z = log q_delta − log p_delta wherever Δ ≠ 0; a wrong P leaves q_delta zero, a
/// wrong Q p_delta. Every byte must name the same column.
pub(crate) fn locate(p_delta: &[u8], q_delta: &[u8], k: usize) -> Culprit {
    let mut found = None;
    for (&pd, &qd) in p_delta.iter().zip(q_delta) {
        let col = match (pd, qd) {
            (0, 0) => continue,
            (_, 0) => k,
            (0, _) => k + 1,
            _ => {
                let z = (T.log[qd as usize] as usize + 255 - T.log[pd as usize] as usize) % 255;
                if z >= k {
                    return Culprit::Unknown;
                }
                z
            }
        };
        match found {
            None => found = Some(col),
            Some(c) if c == col => {}
            Some(_) => return Culprit::Unknown,
        }
    }
    found.map_or(Culprit::Consistent, Culprit::Column)
}

/// Σ gⁱDᵢ over the data columns not in `skip` (all others present).
fn partial_q(cols: &[Option<Vec<u8>>], k: usize, skip: &[usize], len: usize) -> Vec<u8> {
    let zero = vec![0u8; len];
    let data: Vec<&[u8]> = (0..k)
        .map(|i| {
            if skip.contains(&i) {
                &zero[..]
            } else {
                cols[i].as_deref().unwrap()
            }
        })
        .collect();
    let mut q = vec![0u8; len];
    q_syndrome(&mut q, &data);
    q
}

/// P (and Q when `parity` is 2) of the data columns.
pub(crate) fn syndromes(data: &[&[u8]], parity: usize, len: usize) -> (Vec<u8>, Option<Vec<u8>>) {
    // Each syndrome starts as a copy of one column, not as zeros overwritten.
    let start =
        |d: Option<&&[u8]>| d.map_or_else(|| vec![0u8; len], |d| crate::bytes::to_vec(&d[..len]));
    let mut p = start(data.first());
    for d in data.iter().skip(1) {
        crate::xor::xor_into(&mut p, d);
    }
    let q = (parity == 2).then(|| {
        let mut q = start(data.last());
        for d in data.iter().rev().skip(1) {
            times2_xor(&mut q, d);
        }
        q
    });
    (p, q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tables_match_md() {
        // md's raid6 tables: 2^8 = 0x1d, 2^254 · 2 = 1, inverse of 2 is 0x8e.
        assert_eq!(pow2(8), 0x1d);
        assert_eq!(mul(pow2(254), 2), 1);
        assert_eq!(inv(2), 0x8e);
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "{a}");
        }
    }

    #[test]
    fn word_doubling_matches_table() {
        for b in 0..=255u8 {
            let w = u64::from_ne_bytes([b; 8]);
            assert_eq!(mul2_word(w).to_ne_bytes(), [mul(b, 2); 8]);
        }
    }

    fn stripe() -> impl Strategy<Value = Vec<Vec<u8>>> {
        (2usize..8, 1usize..200).prop_flat_map(|(k, len)| {
            prop::collection::vec(prop::collection::vec(any::<u8>(), len), k)
        })
    }

    proptest! {
        #[test]
        fn q_word_path_agrees_with_bytewise(data in stripe()) {
            let refs: Vec<&[u8]> = data.iter().map(|d| &d[..]).collect();
            let len = data[0].len();
            let (mut a, mut b) = (vec![0u8; len], vec![0u8; len]);
            q_syndrome(&mut a, &refs);
            q_bytewise(&mut b, &refs);
            prop_assert_eq!(a, b);
        }

        #[test]
        fn any_two_erasures_are_recovered(data in stripe(), x in 0usize..64, y in 0usize..64) {
            let refs: Vec<&[u8]> = data.iter().map(|d| &d[..]).collect();
            let len = data[0].len();
            let (p, q) = syndromes(&refs, 2, len);
            let whole: Vec<Option<Vec<u8>>> = data
                .iter()
                .cloned()
                .chain([p, q.unwrap()])
                .map(Some)
                .collect();
            let n = whole.len();
            let (x, y) = (x % n, y % n);
            let mut cols = whole.clone();
            cols[x] = None;
            cols[y] = None;
            prop_assert!(solve(&mut cols, 2));
            prop_assert_eq!(&cols, &whole);
            // RAID 5: any one erasure.
            let mut r5: Vec<Option<Vec<u8>>> = whole[..n - 1].to_vec();
            let want = r5.clone();
            r5[x % (n - 1)] = None;
            prop_assert!(solve(&mut r5, 1));
            prop_assert_eq!(r5, want);
        }
    }

    proptest! {
        #[test]
        fn one_corrupt_column_is_located(
            data in stripe(),
            col in 0usize..64,
            at in 0usize..200,
            flip in 1u8..=255,
        ) {
            let refs: Vec<&[u8]> = data.iter().map(|d| &d[..]).collect();
            let (k, len) = (data.len(), data[0].len());
            let (p, q) = syndromes(&refs, 2, len);
            let mut cols: Vec<Vec<u8>> = data.iter().cloned().chain([p, q.unwrap()]).collect();
            let col = col % (k + 2);
            cols[col][at % len] ^= flip;
            let refs: Vec<&[u8]> = cols[..k].iter().map(|d| &d[..]).collect();
            let (p2, q2) = syndromes(&refs, 2, len);
            let pd: Vec<u8> = p2.iter().zip(&cols[k]).map(|(a, b)| a ^ b).collect();
            let qd: Vec<u8> = q2.unwrap().iter().zip(&cols[k + 1]).map(|(a, b)| a ^ b).collect();
            prop_assert_eq!(locate(&pd, &qd, k), Culprit::Column(col));
            prop_assert_eq!(locate(&vec![0; len], &vec![0; len], k), Culprit::Consistent);
        }
    }

    #[test]
    fn two_corrupt_data_columns_are_not_blamed_on_one() {
        // Byte 0 blames data column 0 (q/p = g⁰), byte 1 data column 1 (q/p = g¹).
        assert_eq!(locate(&[1, 1], &[1, 2], 3), Culprit::Unknown);
        // P and Q disagree about which data column: z = log(0x80) = 7 is past k.
        assert_eq!(locate(&[1], &[0x80], 3), Culprit::Unknown);
    }

    #[test]
    fn three_erasures_refused() {
        let mut cols: Vec<Option<Vec<u8>>> = vec![Some(vec![1]), None, None, Some(vec![0]), None];
        assert!(!solve(&mut cols, 2));
        assert!(cols[1].is_none());
    }
}
