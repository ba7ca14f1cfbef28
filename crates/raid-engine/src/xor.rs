//! Parity arithmetic. Word-wise XOR over u64 lanes in blocks of 8 so LLVM emits wide
//! vector XORs without any `unsafe`.

/// `dst ^= src` over the common length.
pub fn xor_into(dst: &mut [u8], src: &[u8]) {
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    let mut dc = dst.chunks_exact_mut(64);
    let mut sc = src.chunks_exact(64);
    for (d, s) in (&mut dc).zip(&mut sc) {
        let mut a = [0u64; 8];
        let mut b = [0u64; 8];
        for i in 0..8 {
            a[i] = u64::from_ne_bytes(d[i * 8..i * 8 + 8].try_into().unwrap());
            b[i] = u64::from_ne_bytes(s[i * 8..i * 8 + 8].try_into().unwrap());
        }
        for i in 0..8 {
            d[i * 8..i * 8 + 8].copy_from_slice(&(a[i] ^ b[i]).to_ne_bytes());
        }
    }
    for (d, s) in dc.into_remainder().iter_mut().zip(sc.remainder()) {
        *d ^= *s;
    }
}

/// Parity of several equally long sources into `dst` (overwritten).
pub fn parity_into(dst: &mut [u8], sources: &[&[u8]]) {
    match sources.split_first() {
        None => dst.fill(0),
        Some((first, rest)) => {
            dst.copy_from_slice(&first[..dst.len()]);
            for s in rest {
                xor_into(dst, s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xor_matches_bytewise() {
        let a: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let b: Vec<u8> = (0..1000u32).map(|i| (i * 13 + 1) as u8).collect();
        let mut d = a.clone();
        xor_into(&mut d, &b);
        for i in 0..1000 {
            assert_eq!(d[i], a[i] ^ b[i]);
        }
        let mut p = vec![0u8; 1000];
        parity_into(&mut p, &[&a, &b, &a]);
        assert_eq!(p, b);
    }
}
