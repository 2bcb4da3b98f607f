"""Why do small tokenizers reconstruct the physics world in grey? A controlled comparison on fixed clips.

Trains one autoencoder on the same 64 physics-world clips (9x64x64, seeds 0..63) and reports held-out PSNR and how
much colour the reconstruction keeps (`chroma`: mean |pixel - its RGB mean| on [-1,1] video; the input has ~0.056):

    python training/colour_diagnostics.py --model nano-cv --steps 300                  # the nano CV4x8x8 tokenizer
    python training/colour_diagnostics.py --model plain --downsample 3 --steps 600     # a plain conv autoencoder
    python training/colour_diagnostics.py --model plain --downsample 2 --chroma 10     # + chroma-weighted L1
    python training/colour_diagnostics.py --model nano-cv-decoder --steps 200          # decoder alone, colour latent

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

from cosmos_hf.tokenizers.losses import chroma_l1_loss

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_tokenizer

NANO_CV_CONFIG = Path(__file__).resolve().parent / "configs" / "tokenizer_nano_cv4x8x8.yaml"


def chroma(video: torch.Tensor) -> float:
    return (video - video.mean(1, keepdim=True)).abs().mean().item()


def pooled_colour_latent(video):
    """A CV4x8x8-shaped latent `[B,16,1+(T-1)/4,H/8,W/8]` holding the 8x8-pooled RGB of each latent frame's frames."""
    groups = [video[:, :, :1]] + [video[:, :, t : t + 4] for t in range(1, video.shape[2], 4)]
    pooled = torch.cat([nn.functional.avg_pool3d(g.mean(2, keepdim=True), (1, 8, 8)) for g in groups], 2)
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
    held_out = source.batch([10**6 + i for i in range(4)])
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
        if args.zero_init_output:
            for param in model.decoder.conv_out.conv_t.parameters():  # last conv only (see zero_init_residual_branches)
                torch.nn.init.zeros_(param)

        def run(video):
            if args.model == "nano-cv-decoder":
                return model.decode(pooled_colour_latent(video)).sample, None
            latent = model.encode(video).latent_dist.mode()
            return model.decode(latent).sample, latent
    trained = model.parameters()
    if args.model == "nano-cv-decoder":
        trained = list(model.decoder.parameters()) + list(model.post_quant_conv.parameters())
    optimizer = torch.optim.AdamW(trained, lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
    start = time.time()
    for step in range(args.steps + 1):
        video = clips[torch.randint(0, len(clips), (batch_size,))]
        recon, latent = run(video)
        ramp = min(1.0, step / args.chroma_warmup_steps) if args.chroma_warmup_steps else 1.0
        loss = (recon - video).abs().mean() + args.chroma * ramp * chroma_l1_loss(recon, video)
        if args.colour_anchor:
            loss = loss + args.colour_anchor * colour_anchor_l1(latent, video, args.colour_path_chroma_gain)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], 1.0)
        optimizer.step()
        if step % 100 == 0:
            with torch.no_grad():
                recon = run(held_out)[0].clamp(-1, 1)
            psnr = 10 * math.log10(4 / ((recon - held_out) ** 2).mean().item())
            print(json.dumps({"model": args.model, "step": step, "loss": round(loss.item(), 4),
                              "held_out_psnr": round(psnr, 2), "chroma_in": round(chroma(held_out), 3),
                              "chroma_out": round(chroma(recon), 3), "seconds": round(time.time() - start)}),
                  flush=True)


if __name__ == "__main__":
    main()
