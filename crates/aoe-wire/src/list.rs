//! What the two lists of the control messages share (a MAC Mask List's directives, a
//! Reserve/Release's MACs): each reads its entries by index, from a received frame or a
//! caller's slice; iterating, comparing by content and printing follow from that. On
//! the wire each is a one-byte count followed by fixed-size entries.

use crate::WireError;

/// The `count` entries of `entry_len` bytes that start at `at` in `frame`, or
/// `CountExceedsFrame` naming the count `field` when the frame holds fewer.
pub(crate) fn counted_entries<'a>(
    frame: &'a [u8],
    at: usize,
    count: u8,
    entry_len: usize,
    field: &'static str,
) -> Result<&'a [u8], WireError> {
    let need = usize::from(count) * entry_len;
    let available = frame.len() - at;
    if need > available {
        return Err(WireError::CountExceedsFrame {
            field,
            count: count.into(),
            need,
            available,
        });
    }
    Ok(&frame[at..at + need])
}

/// The count byte for a list of `n` entries (at most 255).
pub(crate) fn count_byte(n: usize, field: &'static str) -> Result<u8, WireError> {
    u8::try_from(n).map_err(|_| WireError::ValueOutOfRange {
        field,
        value: n as u64,
        max: 255,
    })
}

/// For `$list<'a>` with inherent `len()` and `get(i) -> Option<$item>`: `is_empty`, `iter`,
/// the iterator `$iter<'a>`, `IntoIterator`, and `PartialEq`/`Eq`/`Debug` by the entries
/// (not by where they are held).
macro_rules! indexed_list {
    ($list:ident, $iter:ident, $item:ty) => {
        impl<'a> $list<'a> {
            #[inline]
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            #[inline]
            pub fn iter(&self) -> $iter<'a> {
                $iter {
                    list: *self,
                    next: 0,
                }
            }
        }

        impl PartialEq for $list<'_> {
            fn eq(&self, other: &Self) -> bool {
                self.len() == other.len() && self.iter().eq(other.iter())
            }
        }

        impl Eq for $list<'_> {}

        impl core::fmt::Debug for $list<'_> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.debug_list().entries(self.iter()).finish()
            }
        }

        impl<'a> IntoIterator for $list<'a> {
            type Item = $item;
            type IntoIter = $iter<'a>;
            #[inline]
            fn into_iter(self) -> $iter<'a> {
                self.iter()
            }
        }

        #[doc = concat!("Iterator over a [`", stringify!($list), "`].")]
        #[derive(Clone)]
        pub struct $iter<'a> {
            list: $list<'a>,
            next: usize,
        }

        impl Iterator for $iter<'_> {
            type Item = $item;
            #[inline]
            fn next(&mut self) -> Option<$item> {
                let entry = self.list.get(self.next)?;
                self.next += 1;
                Some(entry)
            }

            #[inline]
            fn size_hint(&self) -> (usize, Option<usize>) {
                let left = self.list.len().saturating_sub(self.next);
                (left, Some(left))
            }
        }

        impl ExactSizeIterator for $iter<'_> {}
    };
}

pub(crate) use indexed_list;
