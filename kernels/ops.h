// The operator set every backend implements, as plain parameter structs (shapes commented
// on each pointer) and one launcher per op collected in a KernelBackend table. The CPU
// backend is always built; it is also the reference every other backend is tested against.
//
// Batch invariance contract (all ops): the result for one row (token) depends only on that
// row's inputs and the op's constants, never on how many rows are in the call, their
// order, or the thread count. Reductions run in a fixed order per row. The engine's
// "same request ⇒ same tokens whatever the batch" guarantee rests on this.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "kernels/dtype.h"

namespace strata::kernels {

// How a GEMM weight matrix [n][k] sits in memory. Both hold the same n·k elements.
//   kRowMajor: row j at w + j·k, as in llama2.c and HF checkpoints.
//   kTiled:    the CPU backend's decode-friendly layout (pack_weights writes it). Rows are
//              grouped in tiles of kWeightTileRows (the last tile keeps the rows left over);
//              within a tile, k runs in chunks of kWeightTileChunk elements, and each chunk
//              holds its rows back to back. Element (j, kk) of tile t = j / 6 with
//              rows_t = min(6, n − 6t), chunk start c0 = kk − kk % 32, len = min(32, k − c0):
//                6t·k + c0·rows_t + (j − 6t)·len + (kk − c0).
//              So a tile, and a thread's whole range of tiles, is one sequential stream
//              whatever the number of activation rows. Element positions do not depend on
//              the dtype.
//   kInt8Packed: the CPU backend's layout for gemm_w8a8 (pack_w8a8 writes it, see the W8A8
//              section below); int8 weights with their scales, not n·k elements of a dtype.
enum class WeightLayout : uint8_t { kRowMajor, kTiled, kInt8Packed };
inline constexpr int kWeightTileRows = 6;
inline constexpr int kWeightTileChunk = 32;  // 64 bytes of bf16: one AVX-512 load

// y = x · Wᵀ (+ bias) (+ y if accumulate). With bf16 weights the activations are rounded to
// bf16 and products accumulate in fp32 (AVX512-BF16 dot products); fp32 and fp16 weights
// use fp32 FMA. The layout changes where weights are read, never how an element is reduced.
struct GemmParams {
  const float* x = nullptr;     // [m, k], row stride ldx
  int64_t ldx = 0;
  const void* w = nullptr;      // [n, k] in layout w_layout, dtype w_dtype (kF32, kBF16, kF16)
  DType w_dtype = DType::kF32;
  WeightLayout w_layout = WeightLayout::kRowMajor;
  const float* bias = nullptr;  // [n] or nullptr
  float* y = nullptr;           // [m, n], row stride ldy
  int64_t ldy = 0;
  int64_t m = 0, n = 0, k = 0;
  bool accumulate = false;      // y += x·Wᵀ: fuses the residual add
  // [gemm_workspace_bytes(w_dtype, m, k)] bytes of backend memory, 64-byte aligned, for the
  // activations converted once per call. The caller owns it (the model sizes one for its
  // largest step), so no call allocates and a captured CUDA graph keeps its address.
  void* workspace = nullptr;
};

// out = x / sqrt(mean(x²) + eps) · weight, per row. out may alias x.
struct RmsNormParams {
  const float* x = nullptr;       // [m, n], row stride ldx
  int64_t ldx = 0;
  const float* weight = nullptr;  // [n]
  float* out = nullptr;           // [m, n], row stride ldo
  int64_t ldo = 0;
  int64_t m = 0, n = 0;
  float eps = 1e-5f;
};

// Rotary embedding on adjacent pairs (2i, 2i+1) inside each head, in place: llama2.c's
// layout. HF checkpoints (rotate-half layout) have their q/k rows permuted at load time
// so one kernel serves both. Angles are computed in double: pos · inv_freq[i].
struct RopeParams {
  float* q = nullptr;                // [t, num_q_heads, head_dim], row stride q_stride
  int64_t q_stride = 0;
  float* k = nullptr;                // [t, num_kv_heads, head_dim], row stride k_stride
  int64_t k_stride = 0;
  const int32_t* positions = nullptr;  // [t]
  const double* inv_freq = nullptr;    // [head_dim / 2], rope scaling already applied
  int64_t t = 0;
  int num_q_heads = 0, num_kv_heads = 0, head_dim = 0;
};

// out = silu(gate) ⊙ up, where each input row is [gate (f) | up (f)].
struct SiluMulParams {
  const float* gate_up = nullptr;  // [t, 2f], row stride ld_in
  int64_t ld_in = 0;
  float* out = nullptr;            // [t, f], row stride ld_out
  int64_t ld_out = 0;
  int64_t t = 0, f = 0;
};

// Stores each token's K and V in its cache slot (slot = block_id · block_size + offset),
// converted to the cache dtype: rounded to nearest even for bf16 and fp16, quantized by
// the int8 rule of kernels/kv_cache_format.h. A row's bytes depend on that row alone.
struct KvCacheWriteParams {
  const float* k = nullptr;            // [t, num_kv_heads, head_dim], row stride k_stride
  const float* v = nullptr;            // [t, num_kv_heads, head_dim], row stride v_stride
  int64_t k_stride = 0, v_stride = 0;
  void* k_cache = nullptr;             // tiles of kv_cache_format.h, dtype cache_dtype
  void* v_cache = nullptr;
  DType cache_dtype = DType::kF32;
  const int32_t* slot_mapping = nullptr;  // [t]
  int64_t t = 0;
  int num_kv_heads = 0, head_dim = 0, block_size = 0;
};

// One sequence's share of a step's attention. Its queries are the last num_queries
// positions of its context: query j sits at position context_len - num_queries + j and
// attends causally to positions 0..that one.
struct AttentionSequence {
  int32_t query_start = 0;             // index of its first query row in q / out
  int32_t num_queries = 0;
  int32_t context_len = 0;             // cached tokens, this step's included
  // [ceil(context_len / block_size)] block ids, in the backend's memory
  const int32_t* block_table = nullptr;
};

// A tile of one sequence's queries: the unit of prefill attention work. The CPU runs it
// once per KV head as one work item; the GPU as one thread block per KV head.
struct AttentionWorkItem {
  int32_t seq = 0;                 // index into the plan's prefill sequences
  int32_t q_begin = 0, q_end = 0;  // the sequence's queries [q_begin, q_end)
  int32_t kv_len = 0;              // positions the tile's last query attends to
};

// What plan_attention reads: the step's sequences split by kernel (decode: one query each;
// prefill: the rest) as host arrays whose block tables are in the backend's memory. A
// padded decode step (fixed inputs a CUDA graph replays) passes device_decode_seqs instead
// of decode_seqs, with max_context_len bounding their contexts.
struct AttentionPlanParams {
  const AttentionSequence* decode_seqs = nullptr;         // [num_decode_seqs], host
  const AttentionSequence* device_decode_seqs = nullptr;  // [num_decode_seqs], backend memory
  int num_decode_seqs = 0;
  int max_context_len = 0;                                // with device_decode_seqs only
  const AttentionSequence* prefill_seqs = nullptr;        // [num_prefill_seqs], host
  int num_prefill_seqs = 0;
  int num_q_heads = 0, num_kv_heads = 0, head_dim = 0, block_size = 0;
};

// One step's attention work, decided once by plan_attention and run unchanged by every
// layer: the prefill work items, the decode split count, the threads, and the workspace one
// call needs (the caller owns it; the layers take turns with it). The kernels read the
// sequences and items from backend memory: `metadata` is their host image, which the caller
// copies there (with the step's other inputs) and binds with bind_attention_plan.
//
// A plan never changes a row's arithmetic: items and splits only decide which thread or
// thread block computes a row, so the batch-invariance contract above holds for any plan.
struct AttentionPlan {
  int num_q_heads = 0, num_kv_heads = 0, head_dim = 0, block_size = 0;  // planned for
  int num_decode_seqs = 0;
  int max_context_len = 0;    // of the decode sequences
  int decode_splits = 0;      // KV partitions per decode sequence (1 on the CPU)
  int num_prefill_seqs = 0;
  std::vector<AttentionWorkItem> prefill_items;
  int threads = 1;            // CPU threads each call uses
  int64_t workspace_bytes = 0;
  // [decode seqs | prefill seqs | prefill items], regions 16-byte aligned. Decode
  // sequences given on the device are not in it (decode_seqs_at = -1).
  std::vector<unsigned char> metadata;
  int64_t decode_seqs_at = -1, prefill_seqs_at = 0, prefill_items_at = 0;
  // Backend-memory addresses, valid once bound.
  const AttentionSequence* decode_seqs = nullptr;   // [num_decode_seqs]
  const AttentionSequence* prefill_seqs = nullptr;  // [num_prefill_seqs]
  const AttentionWorkItem* items = nullptr;         // [prefill_items.size()]
};

// Points the plan at its metadata image, copied to `device_metadata` in backend memory
// (on the CPU, plan.metadata.data() itself will do).
void bind_attention_plan(AttentionPlan& plan, const void* device_metadata);
// Most bytes a plan's metadata can take for these counts (a work item holds at least one
// query), so a caller can place the image before planning.
int64_t attention_metadata_bytes_bound(int num_decode_seqs, int num_prefill_seqs,
                                       int64_t num_prefill_queries);

// Causal attention of queries over a paged KV cache along a plan, grouped-query: query head
// h reads KV head h / (num_q_heads / num_kv_heads). Shapes must be the plan's.
struct PagedAttentionParams {
  const float* q = nullptr;        // [num_tokens, num_q_heads, head_dim], row stride q_stride
  int64_t q_stride = 0;
  // Tiles of kv_cache_format.h in cache_dtype, converted (exactly) to fp32 inside the
  // kernel; the arithmetic after that conversion is the fp32 cache's.
  const void* k_cache = nullptr;
  const void* v_cache = nullptr;
  DType cache_dtype = DType::kF32;
  float* out = nullptr;            // [num_tokens, num_q_heads, head_dim], row stride out_stride
  int64_t out_stride = 0;
  const AttentionPlan* plan = nullptr;  // bound
  void* workspace = nullptr;       // [plan->workspace_bytes] bytes in backend memory
  int num_q_heads = 0, num_kv_heads = 0, head_dim = 0, block_size = 0;
  float scale = 1.0f;              // usually 1 / sqrt(head_dim)
};

// out[i] = table[ids[i] − id_begin] converted to fp32, or zeros where ids[i] falls outside
// [id_begin, id_begin + table_rows): the vocab-parallel embedding, where each TP rank holds
// table_rows rows from id_begin and one all-reduce assembles the rows.
struct EmbeddingParams {
  const int32_t* ids = nullptr;  // [t]
  const void* table = nullptr;   // [table_rows, dim], dtype table_dtype, layout table_layout
  DType table_dtype = DType::kF32;
  // A tied embedding is also the LM head, packed for the gemm (see WeightLayout).
  WeightLayout table_layout = WeightLayout::kRowMajor;
  int64_t table_rows = 0;
  int64_t id_begin = 0;
  float* out = nullptr;          // [t, dim]
  int64_t t = 0, dim = 0;
};

// y += x: the residual add after a tensor-parallel all-reduce.
struct AddParams {
  const float* x = nullptr;  // [m, n], row stride ldx
  int64_t ldx = 0;
  float* y = nullptr;        // [m, n], row stride ldy
  int64_t ldy = 0;
  int64_t m = 0, n = 0;
};

// out[i] = x[rows[i]]: each sequence's last token, picked before the final norm and LM head.
struct GatherRowsParams {
  const float* x = nullptr;       // [*, n], row stride ldx
  int64_t ldx = 0;
  const int32_t* rows = nullptr;  // [m] row indices into x
  float* out = nullptr;           // [m, n], row stride ldo; must not overlap x
  int64_t ldo = 0;
  int64_t m = 0, n = 0;
};

// Where a copy's two ends live. "Device" is the backend's memory (host memory on the CPU,
// where every kind is a memcpy).
enum class CopyKind : uint8_t { kHostToDevice, kDeviceToHost, kDeviceToDevice };

// `rows` rows of row_bytes each, from src to dst, each side with its own pitch (bytes from
// one row to the next). Ordered with the ops enqueued before and after it. Host → device:
// src may be reused once the call returns. Device → host: dst is valid after synchronize().
struct CopyParams {
  void* dst = nullptr;
  int64_t dst_pitch = 0;
  const void* src = nullptr;
  int64_t src_pitch = 0;
  int64_t row_bytes = 0;
  int64_t rows = 1;
  CopyKind kind = CopyKind::kHostToDevice;
};

// Rewrites a row-major weight matrix into the layout the backend's gemm streams fastest.
struct PackWeightsParams {
  const void* src = nullptr;  // [n, k] row-major, dtype
  void* dst = nullptr;        // n·k elements of dtype; must not overlap src
  DType dtype = DType::kF32;
  int64_t n = 0, k = 0;
};

// ---- W8A8: int8 weights × int8 activations ----------------------------------------------
//
// Weights are quantized once, at load time, symmetric int8 per output channel (one scale per
// row of W) or per group of group_size consecutive k (a multiple of 32; 32 is GGUF Q8_0's
// block). Activations are quantized per token (row) by the op that produces them
// (rmsnorm_quant, silu_mul_quant). The GEMM sums int8 products exactly in int32 and applies
// the scales in fp32. Every backend and every CPU path computes the same bits for one row:
//
//   quantize a row or group v (fp32, finite): amax = max |v|, exact.
//     amax >= kInt8MinAmax: scale = amax / 127, inv = 127 / amax (fp32, round to nearest);
//                           q = clamp(rne(v · inv), −127, 127), v · inv rounded to fp32 first
//                           (it never exceeds 127.5, so the clamp only guards; −128 never
//                           occurs, which the GEMM's sign trick relies on).
//     else (an all-zero row, or one so small that 127 / amax would overflow): scale = 0,
//                           q = 0 — no inf or NaN.
//   gemm_w8a8, output (i, j), groups g = 0 .. G−1 in k order (G = 1 per channel):
//     acc_g = Σ_{k in g} xq[i][k] · wq[j][k]   exact in int32 (k ≤ kInt8MaxK, checked)
//     dot   = float(acc_0) · w_scale[j][0];  dot = fma(float(acc_g), w_scale[j][g], dot), g ≥ 1
//     v = dot · x_scale[i];  v = v + bias[j] (if bias);  y[i][j] = y[i][j] + v (if accumulate)
//   each step one fp32 rounding (fma: one rounding). Integer sums are exact whatever the
//   order, so tiling, the ISA and the thread count never change a bit; nor does m: the batch
//   invariance contract above holds exactly, and from the same int8 inputs a CUDA GEMM row
//   is its CPU twin's bit for bit. (The CUDA activation ops follow their unfused twins:
//   RMSNorm's sum of squares in another order, expf for exp; see cuda_backend.h.)
inline constexpr float kInt8MinAmax = 1e-30f;
// 127² · k must fit in int32 for the sums to be exact.
inline constexpr int64_t kInt8MaxK = int64_t{1} << 17;

// Scale groups per row: 1 per channel (group_size 0), else ceil(k / group_size) (the last
// group may be shorter).
int64_t w8a8_num_groups(int64_t k, int64_t group_size);

// Quantizes a weight matrix on the host, at load time (both backends load its output: the
// CUDA backend as is, the CPU backend after pack_w8a8). Checks group_size (0 or a multiple
// of 32) and aborts with a message naming the value otherwise.
struct QuantizeWeightsParams {
  const void* w = nullptr;      // [n, k] row-major, dtype w_dtype (kF32, kBF16, kF16)
  DType w_dtype = DType::kF32;
  int64_t n = 0, k = 0;
  int64_t group_size = 0;       // 0: per output channel; else a multiple of 32
  int8_t* q = nullptr;          // [n, k] row-major, in [−127, 127]
  float* scales = nullptr;      // [n, w8a8_num_groups(k, group_size)]
};
void quantize_weights_int8(const QuantizeWeightsParams& p);

// The CPU backend's kInt8Packed layout (pack_w8a8 writes it; w8a8_packed_bytes sizes it).
// Columns (weight rows) in tiles of kInt8TileCols, the last tile padded with zero rows; k in
// blocks of 4. Each tile holds, for each scale group in k order, the group's blocks then its
// scales:
//   block b of the tile = 256 bytes: byte 4c + e = wq[64t + c][4b + e] + 128 (as uint8), so
//     one 64-byte load is 16 columns × 4 k, the operand of one vpdpbusd; padding (rows past
//     n, k past the end) is byte 0, which multiplies any activation to 0;
//   after the group's blocks: 64 fp32 scales, column c's at float c (padding rows: 0).
// Full groups hold group_size / 4 blocks; the last holds ceil(rest / 4); per channel the one
// group holds ceil(k / 4). A tile is ceil(k / 4) · 256 + groups · 256 bytes and the tiles
// follow each other, so a thread's range of tiles is one sequential stream (decode reads each
// weight byte once) whatever m. Why weights + 128 and not activations + 128: vpdpbusd takes
// unsigned bytes in its register operand and signed ones in the broadcast operand; storing
// the weights unsigned costs nothing per call, and the 128 · Σ x correction it needs is per
// activation row and group, computed once per call in the workspace.
inline constexpr int kInt8TileCols = 64;

struct PackW8A8Params {
  const int8_t* q = nullptr;      // [n, k] row-major, from quantize_weights_int8
  const float* scales = nullptr;  // [n, w8a8_num_groups(k, group_size)]
  void* dst = nullptr;            // [w8a8_packed_bytes(n, k, group_size)] bytes, 64-byte aligned
  int64_t n = 0, k = 0, group_size = 0;
};

// Fused RMSNorm and per-token quantization: v = the bits rmsnorm would write (sum of squares
// in double, x · inv_rms · weight in fp32), quantized per row as above. The row's scale goes
// to scale[i]. out must not overlap x.
struct RmsNormQuantParams {
  const float* x = nullptr;       // [m, n], row stride ldx
  int64_t ldx = 0;
  const float* weight = nullptr;  // [n]
  int8_t* out = nullptr;          // [m, n], row stride ldo
  int64_t ldo = 0;
  float* scale = nullptr;         // [m]
  int64_t m = 0, n = 0;
  float eps = 1e-5f;
};

// Fused SiLU·mul and per-token quantization: v = the bits silu_mul would write, quantized per
// row as above.
struct SiluMulQuantParams {
  const float* gate_up = nullptr;  // [t, 2f], row stride ld_in: [gate (f) | up (f)]
  int64_t ld_in = 0;
  int8_t* out = nullptr;           // [t, f], row stride ld_out
  int64_t ld_out = 0;
  float* scale = nullptr;          // [t]
  int64_t t = 0, f = 0;
};

// y = (xq · wqᵀ) scaled as above (+ bias) (+ y if accumulate). Layouts per backend:
//   CPU:  w_layout kInt8Packed only (w = pack_w8a8's buffer, w_scale = nullptr: the scales
//         are in it); AVX512-VNNI, AVX2 and scalar paths, bit-identical.
//   CUDA: w_layout kRowMajor only (w = int8 [n, k], w_scale = [n, groups]). Per channel:
//         cuBLASLt int8 × int8 → int32 into the workspace, then one epilogue kernel; shapes
//         cuBLASLt cannot take (k, n or ldx not a multiple of 4, pointers not 16-byte aligned)
//         and per-group scales run a simple direct kernel instead (correct, not fast).
struct GemmW8A8Params {
  const int8_t* x = nullptr;       // [m, k], row stride ldx
  int64_t ldx = 0;
  const float* x_scale = nullptr;  // [m]
  const void* w = nullptr;         // see above: packed buffer or int8 [n, k]
  const float* w_scale = nullptr;  // kRowMajor: [n, w8a8_num_groups(k, group_size)]
  WeightLayout w_layout = WeightLayout::kInt8Packed;
  int64_t group_size = 0;          // as quantized: 0 per channel, else a multiple of 32
  const float* bias = nullptr;     // [n] or nullptr
  float* y = nullptr;              // [m, n], row stride ldy
  int64_t ldy = 0;
  int64_t m = 0, n = 0, k = 0;
  bool accumulate = false;         // y += ...: fuses the residual add
  // [gemm_w8a8_workspace_bytes(m, n, k, group_size)] bytes of backend memory, 256-byte
  // aligned, owned by the caller: no call allocates (a captured CUDA graph keeps addresses).
  void* workspace = nullptr;
};

// ---- W4A16: group-wise int4 weights, 16-bit activations -------------------------------
//
// Quantization (kernels/quant_int4.h, on the host at load time) is GGUF's Q4_0 generalized
// to a group size G of 32, 64 or 128 along k (k must be a multiple of G). For each group of
// G consecutive weights of a row, with `max` the weight of largest magnitude, sign kept:
//   d = max / −8, stored as fp16;  q = min(15, trunc(w · (1/d) + 8.5)) ∈ [0, 15] (fp32;
//   an all-zero group has d = 0 and q = 8); the weight the kernels use is (q − 8) · d,
//   exactly: an fp16 d times an integer in [−8, 7] fits fp32, so no path rounds a
//   dequantized weight.
// The largest-magnitude weight is exact (−8·d = max) and the other sign reaches 7·d.
// Preferred over max|w| / 7 because it is ggml's quantize_row_q4_0 bit for bit: a GGUF Q4_0
// tensor (G = 32) is already Int4Layout::kBlocks, so it needs no requantization (and no
// second rounding) to run here.
//
// How an [n, k] int4 matrix sits in memory:
//   kBlocks: row-major blocks, as GGUF stores Q4_0. Row j holds k/G blocks from byte
//            j·(k/G)·(2 + G/2); a block is d (fp16, little-endian) then G/2 bytes, byte i
//            holding q[i] in its low nibble and q[i + G/2] in its high nibble. For G = 32
//            this is ggml's block_q4_0. int4_blocks_bytes(n, k, G) bytes. The CUDA
//            backend reads it; the CPU backend packs it.
//   kTiled:  the CPU backend's decode-friendly layout (pack_w4a16 writes it from kBlocks).
//            Rows in tiles of kInt4TileRows (the last tile keeps the rows_t rows left over);
//            k padded to kb blocks of kInt4TileK (padding: q = 8 and d = 0, which adds
//            nothing). Tile t starts at byte t·tile_bytes(kInt4TileRows) and is one stream of
//            superblocks, each S = G/16 blocks (the last may hold fewer): a 64-byte line of
//            their scales [S][rows_t][128/G] (fp16, zero-padded), then their nibble blocks
//            [S][rows_t], 64 bytes each; tile_bytes(rows_t) = ceil(kb/S)·64 + kb·rows_t·64.
//            The nibble block of row j for k0 = 128·b is 32 little-endian 16-bit words;
//            bits [4h, 4h + 4) of word i hold run h's element i, h = 0..3: q[k0 + 32h + i],
//            except that for G = 32 each 64-weight half v pairs its two groups, run 2v + u
//            holding the 16 weights from k0 + 64v + 16u, then the 16 from k0 + 64v + 32 + 16u.
//            So one 64-byte load gives four runs of 32 weights by shifts and a 32-entry
//            permute (AVX-512) or shifts and masks (AVX2), and a thread's range of tiles is
//            one sequential stream with no byte skipped. int4_tiled_bytes(n, k, G) bytes.
enum class Int4Layout : uint8_t { kBlocks, kTiled };
inline constexpr int kInt4TileRows = 4;
inline constexpr int kInt4TileK = 128;

// y = x · dequant(W)ᵀ (+ bias) (+ y if accumulate), with W as above. x is rounded to bf16
// (round to nearest even, as the bf16 gemm does) and weights are exact, so the products
// the paths form (x·w, or x·(q − 8) before the scale) are exact in fp32; the paths differ
// only in the fp32 sums (and where the scale multiplies), in an order fixed by k (never by
// m, the other rows or the thread count), then + bias, then + y:
//   CPU AVX-512: per 64 weights, s = Σ x·(q − 8) by two chained vdpbf16ps (16 fp32 lanes;
//     for G = 32 lanes 0-7 sum the first group, 8-15 the second), then acc += d·s with d
//     the lanes' scales (one fp32 FMA); finally the fixed-order horizontal sum.
//   CPU AVX2: w = (q − 8)·d in fp32 (exact), acc += x·w in 8 fp32 lanes; horizontal sum.
//   CPU scalar: acc += x·w one element at a time, in k order.
//   CUDA, m ≤ 8 (a GEMV kernel): per 8 weights s = Σ x·(q − 8), acc += d·s per lane; then
//     the warp's and the k-split's sums in a fixed order (batch invariant like the CPU).
//   CUDA, larger m: W dequantized exactly into two bf16 matrices hi + lo (a weight has at
//     most 14 significant bits: hi keeps 8, lo the rest) and two cuBLAS bf16 GEMMs in fp32
//     (so, as for the bf16 gemm on cuBLAS, a row's bits may change with m).
// Aimed at decode (m = 1..8): the CPU streams 0.5 byte per weight (+ scales) once, split
// over the threads by weight-row tiles; larger m unpacks each tile once into a panel in
// the workspace and reuses it for every row, with the same bits as unpacking in registers.
struct GemmW4A16Params {
  const float* x = nullptr;     // [m, k], row stride ldx
  int64_t ldx = 0;
  const void* w = nullptr;      // [n, k] int4 + fp16 scales in layout w_layout
  Int4Layout w_layout = Int4Layout::kBlocks;
  int group_size = 32;          // G: 32, 64 or 128
  const float* bias = nullptr;  // [n] or nullptr
  float* y = nullptr;           // [m, n], row stride ldy
  int64_t ldy = 0;
  int64_t m = 0, n = 0, k = 0;
  bool accumulate = false;      // y += x·Wᵀ: fuses the residual add
  // [gemm_w4a16_workspace_bytes(m, k)] bytes of backend memory, 64-byte aligned: the
  // converted activations and, for larger m, the dequantized panels. The caller owns it.
  void* workspace = nullptr;
};

// Rewrites kBlocks weights into the layout the backend's gemm_w4a16 streams fastest.
struct PackW4A16Params {
  const void* src = nullptr;  // [n, k] in Int4Layout::kBlocks: int4_blocks_bytes(n, k, G)
  void* dst = nullptr;        // int4_tiled_bytes(n, k, G) bytes; must not overlap src
  int group_size = 32;
  int64_t n = 0, k = 0;
};

struct KernelBackend {
  std::string_view name;
  void (*gemm)(const GemmParams&);
  // Bytes GemmParams::workspace must hold for an [m, k] input against w_dtype weights.
  int64_t (*gemm_workspace_bytes)(DType w_dtype, int64_t m, int64_t k);
  void (*rmsnorm)(const RmsNormParams&);
  void (*rope)(const RopeParams&);
  void (*silu_mul)(const SiluMulParams&);
  void (*kv_cache_write)(const KvCacheWriteParams&);
  // Once per step, on the host: the attention work of every layer (see AttentionPlan).
  void (*plan_attention)(const AttentionPlanParams&, AttentionPlan&);
  // The plan's prefill sequences: any mix of prefill chunks and decode tokens.
  void (*paged_attention)(const PagedAttentionParams&);
  // The plan's decode sequences (num_queries == 1, checked when planned). Same bits per
  // (query, head) row as paged_attention, so a token's output does not depend on which of
  // the two ran it.
  void (*decode_attention)(const PagedAttentionParams&);
  void (*embedding)(const EmbeddingParams&);
  void (*add)(const AddParams&);
  void (*gather_rows)(const GatherRowsParams&);
  void (*copy)(const CopyParams&);
  // Returns when every op this thread enqueued has finished (CPU ops finish on return).
  void (*synchronize)();
  // Optional; nullptr where gemm reads kRowMajor only (the CUDA backend). Packs once, at
  // load time, and returns the layout written, to pass as GemmParams::w_layout.
  WeightLayout (*pack_weights)(const PackWeightsParams&) = nullptr;
  // W8A8 (see its section above). The first four are on every backend.
  void (*rmsnorm_quant)(const RmsNormQuantParams&) = nullptr;
  void (*silu_mul_quant)(const SiluMulQuantParams&) = nullptr;
  void (*gemm_w8a8)(const GemmW8A8Params&) = nullptr;
  // Bytes GemmW8A8Params::workspace must hold for this shape (shapes only; any m up to the
  // one asked for fits).
  int64_t (*gemm_w8a8_workspace_bytes)(int64_t m, int64_t n, int64_t k,
                                       int64_t group_size) = nullptr;
  // Optional; nullptr where gemm_w8a8 reads kRowMajor int8 (the CUDA backend). Packs once,
  // at load time, into w8a8_packed_bytes bytes, and returns the layout written.
  int64_t (*w8a8_packed_bytes)(int64_t n, int64_t k, int64_t group_size) = nullptr;
  WeightLayout (*pack_w8a8)(const PackW8A8Params&) = nullptr;
  // W4A16 (see Int4Layout). gemm_w4a16 reads the layout pack_w4a16 returns, or kBlocks
  // where pack_w4a16 is nullptr (the CUDA backend).
  void (*gemm_w4a16)(const GemmW4A16Params&) = nullptr;
  // Bytes GemmW4A16Params::workspace must hold for an [m, k] input. CPU: for the ISA path
  // cpu_isa() picks now and up to all cores (the kernel never runs more threads).
  int64_t (*gemm_w4a16_workspace_bytes)(int64_t m, int64_t k) = nullptr;
  Int4Layout (*pack_w4a16)(const PackW4A16Params&) = nullptr;
};

// The CPU backend; picks AVX-512 (BF16/VNNI) or AVX2 code paths once, at first use, from
// CPUID. STRATA_CPU_ISA=avx2|avx512 forces one (for tests and benchmarks).
const KernelBackend& cpu_backend();

// Which CPU code path cpu_backend() runs: "avx512-bf16", "avx2" or "scalar".
std::string_view cpu_isa_name();

// Threads the CPU kernels use (OpenMP); 0 means all cores.
void set_cpu_threads(int num_threads);
int cpu_threads();

}  // namespace strata::kernels
