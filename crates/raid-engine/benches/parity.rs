//! Parity XOR and the RAID 6 Q syndrome (64-bit word path and the byte-table
//! reference) vs memcpy of the same bytes, in one run; CRC32C per 4 KiB. Prints medians.
//! cargo bench -p raid-engine --bench parity

use std::hint::black_box;
use std::time::Instant;

use raid_engine::{parity_into, q_bytewise, q_syndrome, xor_into};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time<F: FnMut()>(reps: usize, iters: usize, mut f: F) -> f64 {
    let mut v = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        v.push(t.elapsed().as_secs_f64() / iters as f64);
    }
    median(v)
}

fn main() {
    let chunk = 128 * 1024;
    let data_members = 4;
    let srcs: Vec<Vec<u8>> = (0..data_members)
        .map(|i| (0..chunk).map(|j| (i * 31 + j * 7) as u8).collect())
        .collect();
    let mut parity = vec![0u8; chunk];
    let mut copy = vec![0u8; chunk * data_members];
    let bytes = (chunk * data_members) as f64;
    let t_xor = time(15, 200, || {
        let refs: Vec<&[u8]> = srcs.iter().map(|s| s.as_slice()).collect();
        parity_into(&mut parity, &refs);
        black_box(&parity);
    });
    let t_copy = time(15, 200, || {
        for (i, s) in srcs.iter().enumerate() {
            copy[i * chunk..(i + 1) * chunk].copy_from_slice(black_box(s));
        }
        black_box(&copy);
    });
    let mut q = vec![0u8; chunk];
    let t_q = time(15, 200, || {
        let refs: Vec<&[u8]> = srcs.iter().map(|s| s.as_slice()).collect();
        q_syndrome(&mut q, &refs);
        black_box(&q);
    });
    let t_qb = time(5, 20, || {
        let refs: Vec<&[u8]> = srcs.iter().map(|s| s.as_slice()).collect();
        q_bytewise(&mut q, &refs);
        black_box(&q);
    });
    let gbs = |t: f64| bytes / t / 1e9;
    println!("parity of a {}x{} KiB stripe: {:.2} GB/s; memcpy of the same bytes: {:.2} GB/s; ratio {:.2}",
        data_members, chunk / 1024, gbs(t_xor), gbs(t_copy), t_copy / t_xor);
    println!(
        "Q syndrome of the same stripe: {:.2} GB/s (64-bit words), {:.2} GB/s (byte tables); \
         P+Q {:.2} GB/s",
        gbs(t_q),
        gbs(t_qb),
        bytes / (t_q + t_xor) / 1e9
    );
    let mut acc = vec![0u8; 4096];
    let src = vec![0x5Au8; 4096];
    let t_x4 = time(15, 20_000, || {
        xor_into(&mut acc, black_box(&src));
    });
    println!("xor_into 4 KiB: {:.0} ns", t_x4 * 1e9);
    let block: Vec<u8> = (0..4096u32).map(|i| (i * 13) as u8).collect();
    let t_crc = time(15, 20_000, || {
        black_box(crc32c::crc32c(black_box(&block)));
    });
    println!(
        "crc32c per 4 KiB block: {:.0} ns ({:.2} GB/s)",
        t_crc * 1e9,
        4096.0 / t_crc / 1e9
    );
}
