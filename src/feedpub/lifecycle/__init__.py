"""The subscriber lifecycle: double opt-in sign-up, the mail queue, suppression, VERP
return paths, data export and erasure, bounce and complaint rates."""
