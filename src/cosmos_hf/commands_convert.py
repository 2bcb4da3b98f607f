"""`cosmos-hf convert tokenizer|ar|post-trained ...`: official NVIDIA checkpoints -> cosmos-hf folders (safetensors)."""

import importlib

# converter name -> module with `add_arguments(parser)` and `run(args)`
CONVERTERS = {
    "tokenizer": "cosmos_hf.tokenizers.convert",
    "ar": "cosmos_hf.autoregressive.convert",
    "post-trained": "cosmos_hf.diffusion.convert_post_trained",
}


def register(subparsers):
    convert = subparsers.add_parser("convert", help="convert official checkpoints to cosmos-hf folders")
    kinds = convert.add_subparsers(dest="kind", metavar="KIND", required=True)
    for name, module_name in CONVERTERS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name == module_name:
                continue
            raise
        parser = kinds.add_parser(name, help=module.__doc__.strip().splitlines()[0], description=module.__doc__)
        module.add_arguments(parser)
        parser.set_defaults(func=module.run)
