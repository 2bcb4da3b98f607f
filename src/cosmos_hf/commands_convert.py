"""`cosmos-hf convert tokenizer|ar|post-trained ...`: official NVIDIA checkpoints -> cosmos-hf folders (safetensors).

Each converter lives next to its model code and exposes `add_arguments(parser)` and `run(args)`; its module (which
imports torch) is imported only when that converter is named, so `cosmos-hf convert --help` answers at once.
"""

# converter name -> (module with `add_arguments(parser)` and `run(args)`, one-line help)
CONVERTERS = {
    "tokenizer": ("cosmos_hf.tokenizers.convert",
                  "Convert official Cosmos-Tokenize1 checkpoints (encoder.jit / decoder.jit / autoencoder.jit / state "
                  "dicts) to folders."),
    "ar": ("cosmos_hf.autoregressive.convert",
           "Convert a Cosmos-Predict1 autoregressive checkpoint (model.pt / .safetensors) to a CosmosARForCausalLM "
           "folder."),
    "post-trained": ("cosmos_hf.diffusion.convert_post_trained",
                     "Convert a post-trained Cosmos-Predict1 DiT checkpoint (camera, action or multi-view) to a "
                     "cosmos-hf model folder."),
}


def register(subparsers, argv=None):
    """Add `convert` to `subparsers`. `argv` (the arguments after `convert`) names the converter whose module is
    imported and whose options are added; the others are listed by name and summary only. None: every converter."""
    from .cli import add_lazy_subcommands

    convert = subparsers.add_parser("convert", help="convert official checkpoints to cosmos-hf folders")
    kinds = convert.add_subparsers(dest="kind", metavar="KIND", required=True)

    def add_converter(kinds, name, module, rest):
        parser = kinds.add_parser(name, help=CONVERTERS[name][1], description=module.__doc__)
        module.add_arguments(parser)
        parser.set_defaults(func=module.run)

    add_lazy_subcommands(kinds, CONVERTERS, argv, add_converter)
