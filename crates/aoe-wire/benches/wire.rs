//! Per-frame cost of the hot-path operations, median of several rounds.
//!
//! Run: `cargo bench -p aoe-wire --bench wire`

use std::hint::black_box;
use std::time::Instant;

use aoe_wire::{
    finish_frame, parse, respond_in_place, write_ata_request, AtaArg, Command, Header, Identify,
    Mac, Message, IDENTIFY_LEN,
};

const ROUNDS: usize = 15;
const ITERS: u32 = 200_000;

/// Median nanoseconds per call of `f` over `ROUNDS` rounds of `ITERS` calls.
fn median_ns(mut f: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..ITERS {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(ITERS)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[ROUNDS / 2]
}

fn main() {
    let initiator = Mac([2, 0, 0, 0, 0, 1]);
    let target = Mac([2, 0, 0, 0, 0, 2]);
    let header = Header::request(target, initiator, 7, 3, Command::Ata, 0x1234);
    let arg = AtaArg::read_write(true, 0x1_0000, 17, true).unwrap();
    let mut frame = vec![0u8; 36 + 17 * 512];
    let off = write_ata_request(&mut frame, &header, &arg).unwrap();
    let len = finish_frame(&mut frame, off + 17 * 512).unwrap();

    let parse_ns = median_ns(|| {
        let p = parse(black_box(&frame[..len])).unwrap();
        if let Message::Ata(a) = p.message {
            black_box(a.arg.effective_lba());
        }
        black_box(p);
    });
    let header_ns = median_ns(|| {
        black_box(Header::parse(black_box(&frame[..len])).unwrap());
    });
    let ata_ns = median_ns(|| {
        black_box(aoe_wire::Ata::parse(black_box(&frame[..len])).unwrap());
    });
    let mut out = vec![0u8; 128];
    let build_ns = median_ns(|| {
        let off = write_ata_request(&mut out, black_box(&header), black_box(&arg)).unwrap();
        black_box(finish_frame(&mut out, off).unwrap());
    });
    let mut inplace = frame.clone();
    let respond_ns = median_ns(|| {
        respond_in_place(black_box(&mut inplace), target, 7, 3).unwrap();
        let reply = arg.reply(0x40, 0);
        reply.emit(&mut inplace).unwrap();
    });
    let id = Identify::new("7.3:bench", "V1", "aoeraid", 1 << 30).unwrap();
    let mut block = [0u8; IDENTIFY_LEN];
    let identify_ns = median_ns(|| {
        black_box(&id).emit(&mut block).unwrap();
        black_box(&block);
    });

    println!("aoe-wire median ns/op ({ROUNDS} rounds x {ITERS}):");
    println!("  parse ATA 17-sector write frame   {parse_ns:8.1}");
    println!("  Header::parse alone               {header_ns:8.1}");
    println!("  Ata::parse alone                  {ata_ns:8.1}");
    println!("  write_ata_request + finish_frame  {build_ns:8.1}");
    println!("  respond_in_place + AtaArg reply   {respond_ns:8.1}");
    println!("  Identify::emit (512 bytes)        {identify_ns:8.1}");
}
