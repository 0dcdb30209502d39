"""The offsets slice's services, one module per reason to change: loan links (links),
residents' offset requests and what they read (requests), the batches sent to the bank
(batches), and the bank's answers (confirmations)."""
