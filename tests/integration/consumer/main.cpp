// The smallest real use of Kiln: a forward pass, backward, and a check of the
// gradients against the closed form.
#include <kiln/kiln.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <vector>

namespace {

int run() {
  // loss = sum(relu(x @ w)); x [1, 2] = [[1, 2]], w [2, 2] = [[1, -1], [1, -1]]
  // x @ w = [[3, -3]], so only column 0 passes the relu:
  //   d loss / d w = x^T @ [[1, 0]] = [[1, 0], [2, 0]]
  //   d loss / d x = [[1, 0]] @ w^T = [[1, 1]]
  kiln::Tensor x = kiln::tensor(std::vector<double>{1.0, 2.0}).view({1, 2}).requires_grad_();
  kiln::Tensor w = kiln::tensor(std::vector<double>{1.0, -1.0, 1.0, -1.0}).view({2, 2}).requires_grad_();
  kiln::Tensor loss = kiln::relu(x.matmul(w)).sum();
  loss.backward();

  const double expected_w[] = {1, 0, 2, 0}, expected_x[] = {1, 1};
  bool ok = std::fabs(loss.item<double>() - 3.0) < 1e-12;
  kiln::Tensor gw = w.grad().contiguous(), gx = x.grad().contiguous();
  for (int i = 0; i < 4; ++i) ok = ok && std::fabs(gw.data_ptr<double>()[i] - expected_w[i]) < 1e-12;
  for (int i = 0; i < 2; ++i) ok = ok && std::fabs(gx.data_ptr<double>()[i] - expected_x[i]) < 1e-12;
  std::cout << "loss " << loss.item<double>() << "\ngrad w " << gw << "\ngrad x " << gx << "\n"
            << (ok ? "ok" : "WRONG: expected grad w [[1, 0], [2, 0]] and grad x [[1, 1]]") << std::endl;
  return ok ? 0 : 1;
}

}  // namespace

int main() {
  try {
    return run();
  } catch (const kiln::Error& e) {
    std::fprintf(stderr, "kiln::Error: %s\n", e.what());
    return 1;
  }
}
