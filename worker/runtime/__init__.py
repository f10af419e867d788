"""The running service: one cycle (fetch -> plan -> deliver), tenants and their leases,
the scheduler and its web endpoints, runtime switches."""
