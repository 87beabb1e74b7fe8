// A small C API over a board's TFLM library built for the host, so that Python (ctypes) can run
// a model with the board's own kernels: the same sources, with CMSIS-NN on its portable C path.
//
// Built by host_library.py together with the library's sources into one shared library. Every
// symbol is hidden except the functions below (-fvisibility=hidden), so this library's copy of
// TFLM never binds to another one loaded in the same process (the TFLM Python runtime).
//
// Errors: a function that fails returns NULL or -1, and tinyml_last_error() then says why, with
// whatever TFLM printed (MicroPrintf -> DebugLog) during the call. The text is per thread, and
// one model handle must not be used by two threads at once.
//
// What still kills the process instead of returning an error (the board would hard-fault too):
// - an arena a little too small: when a temporary tensor no longer fits during Prepare, this TFLM
//   dereferences the null it got back (its TFLITE_DCHECKs are no-ops when ARDUINO is defined).
//   An arena much too small is reported; use an arena with room to spare.
// - a model that passes the flatbuffer verifier but is inconsistent inside (an operator naming a
//   tensor that does not exist, a buffer shorter than its tensor's shape), which TFLM reads
//   without checking; models that the TFLite converter wrote do not do that.
// - a failing TFLITE_CHECK (it calls abort()).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "tensorflow/lite/micro/all_ops_resolver.h"
#include "tensorflow/lite/micro/arena_allocator/single_arena_buffer_allocator.h"
#include "tensorflow/lite/micro/debug_log.h"
#include "tensorflow/lite/micro/memory_planner/greedy_memory_planner.h"
#include "tensorflow/lite/micro/micro_allocator.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_time.h"
#include "tensorflow/lite/schema/schema_generated.h"

#define TINYML_API extern "C" __attribute__((visibility("default")))

namespace {

// What TFLM printed during the current API call, and the error text of the last failed call.
// Kept short: a kernel that logs on every element must not grow it without bound.
constexpr size_t kMaxLogBytes = 4096;
thread_local std::string call_log;
thread_local std::string last_error;

void StartCall() { call_log.clear(); }

// Records a failure: `what` plus TFLM's own words, on one line.
void Fail(const char* what) {
  last_error = what;
  std::string log = call_log;
  for (char& c : log) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  const size_t first = log.find_first_not_of(' ');
  if (first != std::string::npos) {
    last_error += ": ";
    last_error += log.substr(first, log.find_last_not_of(' ') - first + 1);
  }
}

// MicroInterpreter's constructor places these three objects at the start of the arena without
// checking that they fit (a smaller arena is a null dereference), so smaller arenas are refused
// here. Each placement may skip up to 15 bytes to align, and so may the arena's start.
constexpr size_t kMinimumArenaBytes = sizeof(tflite::SingleArenaBufferAllocator) +
                                      sizeof(tflite::GreedyMemoryPlanner) + sizeof(tflite::MicroAllocator) + 4 * 16;

// Flatbuffers and the arena need 16-byte alignment; operator new gives that on x86-64 glibc,
// and this check keeps it from being an assumption on another host.
bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

// The library's system_setup.cpp (Arduino Serial) and micro_time.cpp (Arduino micros()) are left
// out of the host build; these replace them.
extern "C" void DebugLog(const char* s) {
  if (call_log.size() < kMaxLogBytes) call_log.append(s, strnlen(s, kMaxLogBytes - call_log.size()));
}

namespace tflite {
// Timing only feeds TFLM's optional profiler, which is not used here.
uint32_t ticks_per_second() { return 0; }
uint32_t GetCurrentTimeTicks() { return 0; }
}  // namespace tflite

// The arena comes from calloc: zeroed like the board's static arena, and a large one costs no
// memory beyond the pages TFLM touches (the C library maps fresh zero pages for it).
struct FreeDeleter {
  void operator()(uint8_t* p) const { free(p); }
};
using ZeroedBuffer = std::unique_ptr<uint8_t[], FreeDeleter>;

struct TinymlModel {
  // Member order is construction order: the interpreter needs the other three to exist.
  std::unique_ptr<uint8_t[]> model_bytes;  // a private copy: the caller's buffer may move or go away
  ZeroedBuffer arena;
  tflite::AllOpsResolver resolver;
  tflite::MicroInterpreter interpreter;

  TinymlModel(uint8_t* model_copy, uint8_t* arena_buffer, size_t arena_size)
      : model_bytes(model_copy),
        arena(arena_buffer),
        resolver(),
        interpreter(tflite::GetModel(model_copy), resolver, arena_buffer, arena_size) {}
};

namespace {

TfLiteTensor* Tensor(TinymlModel* model, int is_output, int index) {
  tflite::MicroInterpreter& interpreter = model->interpreter;
  const size_t count = is_output ? interpreter.outputs_size() : interpreter.inputs_size();
  if (index < 0 || static_cast<size_t>(index) >= count) {
    Fail(is_output ? "no such output tensor" : "no such input tensor");
    return nullptr;
  }
  return is_output ? interpreter.output(index) : interpreter.input(index);
}

}  // namespace

TINYML_API const char* tinyml_last_error(void) { return last_error.c_str(); }

// Loads a model and allocates its tensors in an arena of `arena_size` bytes. NULL on failure:
// bytes that are not a TFLite flatbuffer, a schema version TFLM does not read, an op the library
// lacks, or an arena too small.
TINYML_API TinymlModel* tinyml_model_create(const uint8_t* data, size_t size, size_t arena_size) {
  StartCall();
  if (arena_size < kMinimumArenaBytes) {
    last_error = "an arena of " + std::to_string(arena_size) + " bytes is too small for TFLM's own objects (" +
                 std::to_string(kMinimumArenaBytes) + " bytes at least)";
    return nullptr;
  }
  // The library is built without exceptions, as on the board, so allocation failures are
  // checked by hand (std::nothrow, calloc) rather than thrown.
  std::unique_ptr<uint8_t[]> model_copy(new (std::nothrow) uint8_t[size]);
  ZeroedBuffer arena(static_cast<uint8_t*>(calloc(arena_size, 1)));
  if (model_copy == nullptr || arena == nullptr) {
    Fail("out of memory for the model and its arena");
    return nullptr;
  }
  if (!Aligned16(model_copy.get()) || !Aligned16(arena.get())) {
    Fail("the host's allocator did not align the model or arena to 16 bytes");
    return nullptr;
  }
  memcpy(model_copy.get(), data, size);
  // Verified in its aligned copy: the verifier checks alignment too.
  flatbuffers::Verifier verifier(model_copy.get(), size);
  if (!tflite::VerifyModelBuffer(verifier)) {
    Fail("not a TFLite model (the flatbuffer does not verify)");
    return nullptr;
  }
  const uint32_t version = tflite::GetModel(model_copy.get())->version();
  if (version != TFLITE_SCHEMA_VERSION) {
    last_error = "model schema version " + std::to_string(version) + ", the library reads version " +
                 std::to_string(TFLITE_SCHEMA_VERSION);
    return nullptr;
  }
  TinymlModel* model = new (std::nothrow) TinymlModel(model_copy.get(), arena.get(), arena_size);
  if (model == nullptr) {
    Fail("out of memory for the model and its arena");
    return nullptr;
  }
  model_copy.release();  // now owned by `model`
  arena.release();
  if (model->interpreter.initialization_status() != kTfLiteOk ||
      model->interpreter.AllocateTensors() != kTfLiteOk) {
    Fail("AllocateTensors failed");
    delete model;
    return nullptr;
  }
  return model;
}

TINYML_API void tinyml_model_destroy(TinymlModel* model) { delete model; }

TINYML_API int tinyml_model_tensor_count(TinymlModel* model, int is_output) {
  return static_cast<int>(is_output ? model->interpreter.outputs_size() : model->interpreter.inputs_size());
}

// Fills `type` (TfLiteType), `dims` (up to `max_dims`) and `bytes`; returns the number of
// dimensions, or -1.
TINYML_API int tinyml_model_tensor_info(TinymlModel* model, int is_output, int index, int* type, int* dims,
                                        int max_dims, size_t* bytes) {
  StartCall();
  const TfLiteTensor* tensor = Tensor(model, is_output, index);
  if (tensor == nullptr) return -1;
  *type = tensor->type;
  *bytes = tensor->bytes;
  const int rank = tensor->dims->size;
  for (int i = 0; i < rank && i < max_dims; ++i) dims[i] = tensor->dims->data[i];
  return rank;
}

TINYML_API int tinyml_model_set_input(TinymlModel* model, int index, const void* data, size_t size) {
  StartCall();
  TfLiteTensor* tensor = Tensor(model, 0, index);
  if (tensor == nullptr) return -1;
  if (size != tensor->bytes) {
    last_error = "input " + std::to_string(index) + " takes " + std::to_string(tensor->bytes) + " bytes, got " +
                 std::to_string(size);
    return -1;
  }
  memcpy(tensor->data.raw, data, size);
  return 0;
}

TINYML_API int tinyml_model_invoke(TinymlModel* model) {
  StartCall();
  if (model->interpreter.Invoke() != kTfLiteOk) {
    Fail("Invoke failed");
    return -1;
  }
  return 0;
}

TINYML_API int tinyml_model_get_output(TinymlModel* model, int index, void* data, size_t size) {
  StartCall();
  const TfLiteTensor* tensor = Tensor(model, 1, index);
  if (tensor == nullptr) return -1;
  if (size != tensor->bytes) {
    last_error = "output " + std::to_string(index) + " has " + std::to_string(tensor->bytes) + " bytes, got room for " +
                 std::to_string(size);
    return -1;
  }
  memcpy(data, tensor->data.raw, size);
  return 0;
}

// Clears variable tensors (stateful ops), as on a freshly loaded model.
TINYML_API int tinyml_model_reset(TinymlModel* model) {
  StartCall();
  if (model->interpreter.Reset() != kTfLiteOk) {
    Fail("Reset failed");
    return -1;
  }
  return 0;
}

// Bytes of the arena in use after allocation. Pointers are 8 bytes here and 4 on the board, so
// this is larger than the board's figure for the same model.
TINYML_API size_t tinyml_model_arena_used_bytes(TinymlModel* model) { return model->interpreter.arena_used_bytes(); }

// The name of builtin operator `code` if this library's AllOpsResolver has a kernel for it, ""
// if it has none, NULL past the last code the library's schema knows.
TINYML_API const char* tinyml_library_builtin_op(int code) {
  static const tflite::AllOpsResolver resolver;
  if (code < tflite::BuiltinOperator_MIN || code > tflite::BuiltinOperator_MAX) return nullptr;
  const auto op = static_cast<tflite::BuiltinOperator>(code);
  return resolver.FindOp(op) != nullptr ? tflite::EnumNameBuiltinOperator(op) : "";
}
