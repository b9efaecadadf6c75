"""Private deconfliction over the network: PSI routes, calls to a partner, our own prepared
sets (items and planned operations) and the persistent query budgets."""
