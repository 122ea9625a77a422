#include "libgaze/models/rows_linear.h"

#include <torch/csrc/autograd/custom_function.h>

namespace gaze {
namespace {

// [R, K] rows as a channels-last [1, K, R, 1] image: the same memory, no copy.
at::Tensor rows_as_image(const at::Tensor& rows) {
  return rows.view({1, rows.size(0), 1, rows.size(1)}).permute({0, 3, 1, 2});
}

// x [R, K] times w^T ([N, K] viewed as a 1x1 kernel), plus bias: [R, N].
at::Tensor pointwise_conv(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) {
  const at::Tensor y = at::conv2d(rows_as_image(x), w.view({w.size(0), w.size(1), 1, 1}), bias);
  return y.permute({0, 2, 3, 1}).reshape({x.size(0), w.size(0)});
}

class RowsLinear : public torch::autograd::Function<RowsLinear> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias) {
    const at::Tensor rows = x.contiguous();
    ctx->save_for_backward({rows, weight});
    return pointwise_conv(rows, weight.contiguous(), bias);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor dy = grads[0].contiguous();
    at::Tensor dx, dweight, dbias;
    if (ctx->needs_input_grad(0)) dx = pointwise_conv(dy, weight.t().contiguous(), {});
    if (ctx->needs_input_grad(1)) dweight = at::mm(dy.t(), x);
    if (ctx->needs_input_grad(2)) dbias = dy.sum(0);
    return {dx, dweight, dbias};
  }
};

}  // namespace

at::Tensor rows_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  TORCH_CHECK(x.dim() == 2 && weight.dim() == 2 && x.size(1) == weight.size(1), "rows_linear: x ", x.sizes(),
              " and weight ", weight.sizes(), " are not [R, K] and [N, K]");
  TORCH_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0)), "rows_linear: bias ",
              bias.sizes(), " for ", weight.size(0), " outputs");
  if (x.size(0) == 0) return at::linear(x, weight, bias);  // no rows: nothing for oneDNN to do
  // A custom autograd function takes defined tensors only; a constant zero bias costs nothing
  // (oneDNN adds it in the same pass) and gets no gradient.
  return RowsLinear::apply(x, weight, bias.defined() ? bias : at::zeros({weight.size(0)}, weight.options()));
}

}  // namespace gaze
