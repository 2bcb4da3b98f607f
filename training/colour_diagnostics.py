"""Why do small tokenizers reconstruct the physics world in grey? A controlled comparison on fixed clips.

Trains one autoencoder on the same 64 physics-world clips (9x64x64, seeds 0..63) and reports held-out PSNR and how
much colour the reconstruction keeps (`chroma`: mean |pixel - its RGB mean| on [-1,1] video; the input has ~0.056):

    python training/colour_diagnostics.py --model nano-cv --steps 300                  # the nano CV4x8x8 tokenizer
    python training/colour_diagnostics.py --model plain --downsample 3 --steps 600     # a plain conv autoencoder
    python training/colour_diagnostics.py --model plain --downsample 2 --chroma 10     # + chroma-weighted L1
    python training/colour_diagnostics.py --model nano-cv-decoder --steps 200          # decoder alone, colour latent
    python training/colour_diagnostics.py --held_out_clips 8 --steps 700 --colour_path_init \
        --freeze_encoder_steps 300 --pixel_loss mse                                     # the v0.2 recipe: colour
    python training/colour_diagnostics.py --held_out_clips 8 --probe_layers pipelines/cosmos-nano-tokenizer-cv4x8x8

With a latent (nano-cv), each evaluation also prints `chroma_error` (colour of the reconstruction vs the input),
`mean_colour_error` (the same on each clip's mean colour) and `latent_chroma_r2` (a linear probe from the latent to
the pooled input colour); `--probe_layers` prints that probe after every encoder stage of a saved tokenizer.
Findings: docs/nano_tokenizer_colour.md.

`--model plain` is a per-frame conv autoencoder (3x3 conv, `downsample` stride-2 4x4 convs, SiLU, no normalisation,
`latent_channels` at the bottleneck) — nothing from Cosmos — so a grey result there is about the data and the
optimisation, not about the Cosmos architecture. `--model nano-cv-decoder` trains only the nano CV decoder, fed a
latent that carries colour by construction (`pooled_colour_latent`), to tell a decoder that cannot make colour from
an encoder that does not pass it on. One JSON line per evaluation; single-threaded and seeded, so reruns
print the same numbers.
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
from torch import nn

from cosmos_hf.tokenizers import load_tokenizer
from cosmos_hf.tokenizers.losses import chroma_l1_loss

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_tokenizer

NANO_CV_CONFIG = Path(__file__).resolve().parent / "configs" / "tokenizer_nano_cv4x8x8.yaml"


def chroma(video: torch.Tensor) -> float:
    return (video - video.mean(1, keepdim=True)).abs().mean().item()


def mean_colour_error(recon, target):
    """Chroma L1 of each clip's mean colour: large-area colour (a beige floor), not small objects."""
    return chroma_l1_loss(recon.mean((2, 3, 4)), target.mean((2, 3, 4))).item()


def linear_probe_r2(train_features, train_video, test_features, test_video, target="chroma"):
    """Held-out R^2 of a linear probe from features `[B,C,T',h,w]` (pooled to the CV4x8x8 latent grid) to the
    8x8-pooled colour (`chroma`: each pixel minus its RGB mean) or `luma` of the frames each latent frame covers.

    On the latent it tells an encoder that drops colour (R^2 ~ 0) from a decoder that ignores it."""

    def rows(features, video):
        pooled = pooled_latent_frames(video)
        luma = pooled.mean(1, keepdim=True)
        values = pooled - luma if target == "chroma" else luma
        features = nn.functional.adaptive_avg_pool3d(features, pooled.shape[2:])
        x = features.permute(0, 2, 3, 4, 1).reshape(-1, features.shape[1])
        return torch.cat([x, torch.ones(len(x), 1)], 1), values.permute(0, 2, 3, 4, 1).reshape(-1, values.shape[1])

    x, y = rows(train_features, train_video)
    weights = torch.linalg.lstsq(x, y).solution
    x, y = rows(test_features, test_video)
    return (1 - ((x @ weights - y) ** 2).sum() / ((y - y.mean(0)) ** 2).sum()).item()


def encoder_stages(model, video):
    """(name, features) after each stage of a Cosmos video encoder, down to the latent."""
    encoder, stages = model.encoder, []
    hidden = encoder.patch_embed(video)
    stages.append(("patcher", hidden))
    hidden = encoder.conv_in(hidden)
    stages.append(("conv_in", hidden))
    for i, block in enumerate(encoder.down_blocks):
        for j, resnet in enumerate(block.resnets):
            hidden = resnet(hidden)
            stages.append((f"down_blocks.{i}.resnets.{j}", hidden))
        for sampler in getattr(block, "downsamplers", None) or []:
            hidden = sampler(hidden)
            stages.append((f"down_blocks.{i}.downsamplers", hidden))
    hidden = encoder.mid_block(hidden)
    stages.append(("mid_block", hidden))
    hidden = encoder.conv_out(nn.functional.silu(encoder.norm_out(hidden)))
    stages.append(("latent", model.quant_conv(hidden)))
    return stages


def probe_layers(model, clips, held_out):
    """Print, for each encoder stage, the held-out R^2 of linear probes for colour and luma (JSON lines)."""
    model.eval()
    with torch.no_grad():
        train = [encoder_stages(model, clips[i : i + 8]) for i in range(0, len(clips), 8)]
        test = encoder_stages(model, held_out)
    for index, (name, test_features) in enumerate(test):
        train_features = torch.cat([batch[index][1] for batch in train])
        print(json.dumps({"stage": name, "channels": test_features.shape[1],
                          "chroma_r2": round(linear_probe_r2(train_features, clips, test_features, held_out), 3),
                          "luma_r2": round(linear_probe_r2(train_features, clips, test_features, held_out, "luma"), 3)}),
              flush=True)


def colour_whitening(clips):
    """Maps to and from the PCA-whitened colour space of `clips` (per-pixel RGB covariance; no mean shift), in [-1, 1]."""
    pixels = clips.transpose(0, 1).reshape(3, -1)
    variance, vectors = torch.linalg.eigh(torch.cov(pixels))
    to_white = torch.diag(variance.rsqrt()) @ vectors.T
    to_white = to_white / torch.einsum("ij,jn->in", to_white, pixels).abs().max()  # tokenizers take [-1, 1]
    to_rgb = torch.linalg.inv(to_white)
    return (lambda v: torch.einsum("ij,bj...->bi...", to_white, v)), (lambda v: torch.einsum("ij,bj...->bi...", to_rgb, v))


def pooled_latent_frames(video):
    """`[B,3,1+(T-1)/4,H/8,W/8]`: the 8x8-pooled RGB of the frames each CV4x8x8 latent frame covers (frame 0 alone,
    then groups of 4)."""
    groups = [video[:, :, :1]] + [video[:, :, t : t + 4] for t in range(1, video.shape[2], 4)]
    return torch.stack([nn.functional.avg_pool2d(g.mean(2), 8) for g in groups], 2)


def pooled_colour_latent(video):
    """A CV4x8x8-shaped latent `[B,16,1+(T-1)/4,H/8,W/8]` holding the 8x8-pooled RGB of each latent frame's frames."""
    pooled = pooled_latent_frames(video)
    return torch.cat([pooled] * 5 + [pooled[:, :1]], 1) * 2


def colour_anchor_l1(latent, video, gain):
    """L1 between latent channels 1-2 and the pooled opponent colour ((R-B)/2, (G-(R+B)/2)/2, times `gain`)."""
    r, g, b = pooled_colour_latent(video)[:, :3].unbind(1)
    target = torch.stack([(r - b) / 4, (g - (r + b) / 2) / 4], 1) * gain  # pooled_colour_latent doubles the colour
    return (latent[:, 1:3] - target).abs().mean()


class PlainAutoencoder(nn.Module):
    """Per-frame conv autoencoder on `[B,3,T,H,W]` video (frames folded into the batch)."""

    def __init__(self, downsample: int, latent_channels: int, width: int = 32):
        super().__init__()
        layers = [nn.Conv2d(3, width, 3, 1, 1), nn.SiLU()]
        for _ in range(downsample):
            layers += [nn.Conv2d(width, width, 4, 2, 1), nn.SiLU()]
        self.encoder = nn.Sequential(*layers, nn.Conv2d(width, latent_channels, 3, 1, 1))
        layers = [nn.Conv2d(latent_channels, width, 3, 1, 1), nn.SiLU()]
        for _ in range(downsample):
            layers += [nn.ConvTranspose2d(width, width, 4, 2, 1), nn.SiLU()]
        self.decoder = nn.Sequential(*layers, nn.Conv2d(width, 3, 3, 1, 1))

    def forward(self, video):
        b, c, t, h, w = video.shape
        frames = video.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        out = self.decoder(self.encoder(frames))
        return out.reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["nano-cv", "nano-cv-decoder", "plain"], default="nano-cv")
    parser.add_argument("--downsample", type=int, default=3, help="plain: number of 2x down-samplings (0-4)")
    parser.add_argument("--latent_channels", type=int, default=4, help="plain: bottleneck channels")
    parser.add_argument("--chroma", type=float, default=0.0, help="weight of the chroma L1 term")
    parser.add_argument("--chroma_warmup_steps", type=int, default=0, help="ramp the chroma weight up linearly")
    parser.add_argument("--zero_init_output", action="store_true", help="nano-cv: start the decoder's conv_out at 0")
    parser.add_argument("--pixel_loss", choices=["l1", "mse"], default="l1",
                        help="reconstruction term: L1 (the reference) or mean squared error")
    parser.add_argument("--colour_whiten", action="store_true",
                        help="train in PCA-whitened colour space (input, target and loss); evaluate in RGB")
    parser.add_argument("--held_out_clips", type=int, default=4,
                        help="held-out clips (seeds 1e6+i, scene i mod 8); 8 covers every scene")
    parser.add_argument("--probe_layers", metavar="FOLDER",
                        help="no training: linear colour/luma probes after each encoder stage of a CV tokenizer folder "
                             "('init': the nano CV config as built by the other flags)")
    parser.add_argument("--freeze_encoder_steps", type=int, default=0,
                        help="nano-cv: train the decoder only for this many steps, then everything")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--overrides", type=json.loads, default={},
                        help='nano-cv: JSON merged into the nano CV4x8x8 overrides, e.g. \'{"patch_size": 4}\'')
    parser.add_argument("--reference_init", action="store_true", help="nano-cv: no zero-initialised branches")
    parser.add_argument("--colour_path_init", action="store_true", help="nano-cv: train_tokenizer.colour_path_init")
    parser.add_argument("--colour_path_chroma_gain", type=float, default=1.0)
    parser.add_argument("--colour_anchor", type=float, default=0.0,
                        help="nano-cv: weight of an L1 pulling latent channels 1-2 to the pooled opponent colour")
    args = parser.parse_args(argv)
    if args.colour_anchor and args.model != "nano-cv":
        raise ValueError("--colour_anchor needs --model nano-cv (it reads the tokenizer's latent)")
    if not 0 <= args.downsample <= 4:
        raise ValueError(f"--downsample must be in 0..4 (64x64 frames), got {args.downsample}")

    torch.manual_seed(0)
    torch.set_num_threads(1)
    source = train_tokenizer.ClipSource({"source": "physics", "height": 64, "width": 64}, 9)
    clips = source.batch(list(range(64)))
    held_out = source.batch([10**6 + i for i in range(args.held_out_clips)])
    batch_size = 4
    if args.model == "plain":
        model = PlainAutoencoder(args.downsample, args.latent_channels)

        def run(video):  # -> (reconstruction, latent or None)
            return model(video), None
    else:
        nano = train_tokenizer.load_config(NANO_CV_CONFIG)["model"]
        overrides = {**nano["overrides"], **args.overrides}
        model = train_tokenizer.build_model({"config_name": nano["config_name"], "overrides": overrides,
                                             "zero_init_residual": not args.reference_init,
                                             "colour_path_init": args.colour_path_init,
                                             "colour_path_chroma_gain": args.colour_path_chroma_gain})
        if args.probe_layers:
            if args.probe_layers != "init":
                model = load_tokenizer(args.probe_layers)
            return probe_layers(model, clips, held_out)
        if args.zero_init_output:
            for param in model.decoder.conv_out.conv_t.parameters():  # last conv only (see zero_init_residual_branches)
                torch.nn.init.zeros_(param)

        def run(video):
            if args.model == "nano-cv-decoder":
                return model.decode(pooled_colour_latent(video)).sample, None
            latent = model.encode(video).latent_dist.mode()
            return model.decode(latent).sample, latent
    if args.colour_whiten:
        whiten, unwhiten = colour_whitening(clips)
        raw_run = run

        def run(video):
            recon, latent = raw_run(whiten(video))
            return unwhiten(recon), latent

    trained = model.parameters()
    if args.model == "nano-cv-decoder":
        trained = list(model.decoder.parameters()) + list(model.post_quant_conv.parameters())
    optimizer = torch.optim.AdamW(trained, lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
    start = time.time()
    for step in range(args.steps + 1):
        video = clips[torch.randint(0, len(clips), (batch_size,))]
        recon, latent = run(video)
        ramp = min(1.0, step / args.chroma_warmup_steps) if args.chroma_warmup_steps else 1.0
        error = whiten(recon) - whiten(video) if args.colour_whiten else recon - video
        pixel_loss = (error ** 2).mean() if args.pixel_loss == "mse" else error.abs().mean()
        loss = pixel_loss + args.chroma * ramp * chroma_l1_loss(recon, video)
        if args.colour_anchor:
            loss = loss + args.colour_anchor * colour_anchor_l1(latent, video, args.colour_path_chroma_gain)
        optimizer.zero_grad()
        loss.backward()
        if step < args.freeze_encoder_steps:
            for param in list(model.encoder.parameters()) + list(model.quant_conv.parameters()):
                param.grad = None  # AdamW skips parameters without a gradient
        torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], 1.0)
        optimizer.step()
        if step % 100 == 0:
            with torch.no_grad():
                recon = run(held_out)[0].clamp(-1, 1)
                probe = {}
                if latent is not None:
                    train_latent = torch.cat([run(clips[i : i + 8])[1] for i in range(0, len(clips), 8)])
                    probe["latent_chroma_r2"] = round(
                        linear_probe_r2(train_latent, clips, run(held_out)[1], held_out), 3)
            psnr = 10 * math.log10(4 / ((recon - held_out) ** 2).mean().item())
            print(json.dumps({"model": args.model, "step": step, "loss": round(loss.item(), 4),
                              "held_out_psnr": round(psnr, 2), "chroma_in": round(chroma(held_out), 3),
                              "chroma_out": round(chroma(recon), 3),
                              "chroma_error": round(chroma_l1_loss(recon, held_out).item(), 3),
                              "mean_colour_error": round(mean_colour_error(recon, held_out), 3), **probe, "seconds": round(time.time() - start)}),
                  flush=True)


if __name__ == "__main__":
    main()
