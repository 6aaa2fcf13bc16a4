// Data loader throughput: images per second decoded and augmented into
// batches, with 0 (on the calling thread), 1 and 2 worker threads, on
//   (a) Fashion-MNIST's training set: random_crop 28 pad 2, horizontal_flip,
//       to_tensor, normalize (the in-memory IDX path: augmentation only);
//   (b) a synthetic image folder of 64x64 PNG and JPEG files written to a
//       temp dir: random_resized_crop 32, horizontal_flip, to_tensor
//       (file reading, decoding, resampling).
// The consumer does nothing with the batches, so this is the loader's
// ceiling, not a training rate.
//
//   kiln_bench_loader [--images N] [--batch B] [--epochs E] [--fashion DIR]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "kiln/data/data.h"

// After <cstdio>: jpeglib.h uses size_t and FILE without including their headers.
// clang-format off
#include <jpeglib.h>
// clang-format on

namespace {

using namespace kiln::data;
namespace fs = std::filesystem;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<uint8_t> encode_jpeg(const Image& im, int quality) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr jerr;
  cinfo.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = static_cast<JDIMENSION>(im.width);
  cinfo.image_height = static_cast<JDIMENSION>(im.height);
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(im.row(cinfo.next_scanline));
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::vector<uint8_t> out(buffer, buffer + size);
  jpeg_destroy_compress(&cinfo);
  std::free(buffer);
  return out;
}

// Smooth gradients plus texture, so the codecs see photo-like content.
Image synthetic_image(int64_t w, int64_t h, int seed) {
  Image im(w, h);
  uint32_t s = 2654435761u * static_cast<uint32_t>(seed + 1);
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      s = s * 1664525u + 1013904223u;
      uint8_t* p = im.row(y) + x * 3;
      p[0] = static_cast<uint8_t>((x * 4 + seed * 13) % 256);
      p[1] = static_cast<uint8_t>((y * 4 + seed * 7) % 256);
      p[2] = static_cast<uint8_t>(((x + y) * 2 + (s >> 28)) % 256);
    }
  return im;
}

fs::path write_folder(int images) {
  const fs::path root = fs::temp_directory_path() / ("kiln_loader_bench_" + std::to_string(images));
  fs::remove_all(root);
  for (int i = 0; i < images; ++i) {
    const fs::path dir = root / ("class" + std::to_string(i % 10));
    fs::create_directories(dir);
    Image im = synthetic_image(64, 64, i);
    if (i % 2 == 0) {
      write_png(dir / (std::to_string(i) + ".png"), im);
    } else {
      std::vector<uint8_t> bytes = encode_jpeg(im, 90);
      std::ofstream(dir / (std::to_string(i) + ".jpg"), std::ios::binary)
          .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }
  }
  return root;
}

void run(const char* name, const std::shared_ptr<const ImageDataset>& ds, const Transforms& t, int64_t batch,
         int epochs) {
  for (int workers : {0, 1, 2}) {
    DataLoader loader(ds, t, {.batch_size = batch, .drop_last = true, .num_workers = workers, .seed = 1});
    loader.next();  // start-up (first batch, threads) outside the timing
    const auto t0 = std::chrono::steady_clock::now();
    int64_t images = 0;
    for (int e = 0; e < epochs; ++e)
      while (auto b = loader.next()) images += b->inputs.size(0);
    const double s = seconds_since(t0);
    const LoaderStats st = loader.stats();
    std::printf("%-14s workers %d  %9.0f images/s  (%lld images in %.2f s; worker time %.2f s, next() waited %.2f s)\n",
                name, workers, images / s, static_cast<long long>(images), s, st.worker_seconds, st.wait_seconds);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int images = 4000, epochs = 1;
  int64_t batch = 128;
  std::string fashion = "/usr/share/datasets/fashion-mnist";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (arg == "--images")
      images = std::stoi(value());
    else if (arg == "--batch")
      batch = std::stoll(value());
    else if (arg == "--epochs")
      epochs = std::stoi(value());
    else if (arg == "--fashion")
      fashion = value();
    else {
      std::fprintf(stderr, "usage: %s [--images N] [--batch B] [--epochs E] [--fashion DIR]\n", argv[0]);
      return 2;
    }
  }

  if (fs::exists(fs::path(fashion) / "train-images-idx3-ubyte.gz")) {
    auto ds = IdxDataset::mnist_split(fashion, "train", true);
    Transforms t({RandomCropSpec{28, 28, 2}, HorizontalFlipSpec{}, ToTensorSpec{}, NormalizeSpec{{0.2860}, {0.3530}}});
    run("fashion-mnist", ds, t, batch, epochs);
  } else {
    std::printf("fashion-mnist: %s not found, skipped\n", fashion.c_str());
  }

  const fs::path root = write_folder(images);
  {
    auto ds = std::make_shared<ImageFolderDataset>(root);
    Transforms t({RandomResizedCropSpec{32, 32}, HorizontalFlipSpec{}, ToTensorSpec{}});
    run("folder 64x64", ds, t, batch, epochs);
  }
  fs::remove_all(root);
  return 0;
}
