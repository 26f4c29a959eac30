;; The drain loop's common case in WebAssembly: records of keys whose frame prefix is known for
;; this batch become frames with one memory.copy of that prefix and the value's bytes. Everything
;; else (a key seen first in this batch, an invalid value, an unknown key) goes back to the
;; JavaScript encoder, which stays the only place frames are built; see frame-kernel.ts, which
;; owns the memory layout, and `npm run generate`, which assembles this file into
;; src/gen/frame_kernel_wasm.ts.
;;
;; A record is 16 bytes (shared/layout.ts): an f64 header `id + op * 2^24`, then the value, an
;; f64 or (op 2) a little-endian u64. A key table entry is 32 bytes: two slots, so that a key
;; whose records alternate between two shapes (a gauge going up and down) has both, each of 16
;; bytes: the batch (epoch) its prefix belongs to, the prefix's shape (encoder.ts), and where the
;; prefix is and how long.
(module
  (memory (export "memory") 16 16384 shared)

  ;; Where `encode` stopped, written to these addresses before it returns.
  (global $OUT_AT i32 (i32.const 0))   ;; address after the last frame written
  (global $ENDS_AT i32 (i32.const 4))  ;; address after the last frame end written
  (global $STATUS_AT i32 (i32.const 8))

  ;; Statuses. The return value is the index of the first record not encoded.
  ;; 0: every record up to `to` was encoded.
  ;; 1: record `i` needs the JavaScript encoder.
  ;; 2: the output or the ends area is full: take what was written, then call again from `i`.
  ;; 3: the batch has `full` bytes: the caller finishes it before encoding more.
  (func $stop (param $i i32) (param $out i32) (param $ends i32) (param $status i32) (result i32)
    (i32.store (global.get $OUT_AT) (local.get $out))
    (i32.store (global.get $ENDS_AT) (local.get $ends))
    (i32.store (global.get $STATUS_AT) (local.get $status))
    (local.get $i))

  ;; Bytes of `v` as a varint.
  (func $varintSize (param $v i64) (result i32)
    (local $n i32)
    (local.set $n (i32.const 1))
    (block $done
      (loop $more
        (br_if $done (i64.lt_u (local.get $v) (i64.const 128)))
        (local.set $v (i64.shr_u (local.get $v) (i64.const 7)))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $more)))
    (local.get $n))

  ;; Encodes records `from` to `to` of the array at `recs`, for the ring whose key table (`cap`
  ;; entries) is at `table`, into frames at `out` (up to `outEnd`) with their ends at `ends` (up
  ;; to `endsEnd`). A frame's end is counted from the batch's start: `base` bytes of the batch
  ;; precede `out`. `seed`: 1 for the seed format, 0 for observer-0.11.
  (func (export "encode")
    (param $recs i32) (param $from i32) (param $to i32)
    (param $table i32) (param $cap i32) (param $epoch i32) (param $seed i32)
    (param $out i32) (param $outEnd i32) (param $ends i32) (param $endsEnd i32)
    (param $base i32) (param $full i32)
    (result i32)
    (local $i i32) (local $rec i32) (local $hdr i32) (local $id i32) (local $op i32)
    (local $v f64) (local $u i64) (local $shape i32) (local $kind i32)
    (local $entry i32) (local $len i32) (local $outStart i32)
    (local.set $outStart (local.get $out))
    (local.set $i (local.get $from))
    (block $done
      (loop $next
        (br_if $done (i32.eq (local.get $i) (local.get $to)))
        (if (i32.ge_u (i32.add (local.get $base) (i32.sub (local.get $out) (local.get $outStart))) (local.get $full))
          (then (return (call $stop (local.get $i) (local.get $out) (local.get $ends) (i32.const 3)))))
        (local.set $rec (i32.add (local.get $recs) (i32.shl (local.get $i) (i32.const 4))))
        ;; A header is `id + op * 2^24`, an integer below 2^27; `trunc_sat` never traps, and an op
        ;; it does not know sends the record to the encoder.
        (local.set $hdr (i32.trunc_sat_f64_u (f64.load (local.get $rec))))
        (local.set $id (i32.and (local.get $hdr) (i32.const 0xffffff)))
        (local.set $op (i32.shr_u (local.get $hdr) (i32.const 24)))
        (local.set $v (f64.load offset=8 (local.get $rec)))
        ;; $kind: how the value is written. 0: a varint of $u (or nothing when $shape says
        ;; so); 1: the f64 $v; 2: nothing.
        (block $js
          (br_if $js (i32.ge_u (local.get $id) (local.get $cap)))
          (block $valued
            (block $counter
              (block $gauge
                (block $histogram
                  (block $u64
                    (block $number
                      (br_table $js $number $u64 $gauge $gauge $gauge $histogram $js (local.get $op)))
                    ;; op 1: a counter increment given as a number, a safe integer >= 0.
                    (br_if $js (i32.eqz (f64.ge (local.get $v) (f64.const 0))))
                    (br_if $js (f64.gt (local.get $v) (f64.const 9007199254740991)))
                    (br_if $js (f64.ne (f64.trunc (local.get $v)) (local.get $v)))
                    (local.set $u (i64.trunc_f64_u (local.get $v)))
                    (br $counter))
                  ;; op 2: a counter increment given as a bigint: the raw u64.
                  (local.set $u (i64.load offset=8 (local.get $rec)))
                  (br $counter))
                ;; op 6: a histogram value; the seed format writes +0 as an empty Histogram.
                (br_if $js (f64.ne (local.get $v) (local.get $v)))
                (if (i32.and (local.get $seed) (i64.eqz (i64.reinterpret_f64 (local.get $v))))
                  (then
                    (local.set $shape (i32.const 49))
                    (local.set $kind (i32.const 2))
                    (br $valued)))
                (local.set $shape (i32.const 48))
                (local.set $kind (i32.const 1))
                (br $valued))
              ;; ops 3-5: gauge set, increment, decrement.
              (br_if $js (f64.ne (local.get $v) (local.get $v)))
              (local.set $shape (i32.add (i32.const 29) (local.get $op))) ;; 32 + GaugeOp
              (local.set $kind (i32.const 1))
              (br $valued))
            ;; A counter: the seed leaves a zero Counter.value out (an empty message).
            (local.set $kind (i32.const 0))
            (if (local.get $seed)
              (then
                (if (i64.eqz (local.get $u))
                  (then
                    (local.set $shape (i32.const 0))
                    (local.set $kind (i32.const 2)))
                  (else (local.set $shape (i32.add (i32.const 1) (call $varintSize (local.get $u)))))))
              (else (local.set $shape (i32.add (i32.const 16) (call $varintSize (local.get $u)))))))
          ;; The key's prefix must be this batch's, for this shape, in either slot.
          (local.set $entry (i32.add (local.get $table) (i32.shl (local.get $id) (i32.const 5))))
          (if (i32.or
                (i32.ne (i32.load (local.get $entry)) (local.get $epoch))
                (i32.ne (i32.load offset=4 (local.get $entry)) (local.get $shape)))
            (then
              (local.set $entry (i32.add (local.get $entry) (i32.const 16)))
              (br_if $js (i32.ne (i32.load (local.get $entry)) (local.get $epoch)))
              (br_if $js (i32.ne (i32.load offset=4 (local.get $entry)) (local.get $shape)))))
          (local.set $len (i32.load offset=12 (local.get $entry)))
          (if (i32.or
                (i32.gt_u (i32.add (i32.add (local.get $out) (local.get $len)) (i32.const 10)) (local.get $outEnd))
                (i32.ge_u (local.get $ends) (local.get $endsEnd)))
            (then (return (call $stop (local.get $i) (local.get $out) (local.get $ends) (i32.const 2)))))
          (memory.copy (local.get $out) (i32.load offset=8 (local.get $entry)) (local.get $len))
          (local.set $out (i32.add (local.get $out) (local.get $len)))
          (block $written
            (br_if $written (i32.eq (local.get $kind) (i32.const 2)))
            (if (i32.eq (local.get $kind) (i32.const 1))
              (then
                (f64.store (local.get $out) (local.get $v))
                (local.set $out (i32.add (local.get $out) (i32.const 8)))
                (br $written)))
            (block $last
              (loop $byte
                (br_if $last (i64.lt_u (local.get $u) (i64.const 128)))
                (i32.store8 (local.get $out) (i32.or (i32.wrap_i64 (local.get $u)) (i32.const 0x80)))
                (local.set $out (i32.add (local.get $out) (i32.const 1)))
                (local.set $u (i64.shr_u (local.get $u) (i64.const 7)))
                (br $byte)))
            (i32.store8 (local.get $out) (i32.wrap_i64 (local.get $u)))
            (local.set $out (i32.add (local.get $out) (i32.const 1))))
          (i32.store (local.get $ends) (i32.add (local.get $base) (i32.sub (local.get $out) (local.get $outStart))))
          (local.set $ends (i32.add (local.get $ends) (i32.const 4)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $next))
        ;; $js: the JavaScript encoder takes this record.
        (return (call $stop (local.get $i) (local.get $out) (local.get $ends) (i32.const 1)))))
    (call $stop (local.get $i) (local.get $out) (local.get $ends) (i32.const 0))))
