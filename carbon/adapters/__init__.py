"""The built-in verification adapters, one folder each (models, services, verifier, API,
admin). Their models keep the `carbon` app label; the core reaches them only through its
registries (verifiers, personal data), never by importing them."""
