"""The support-desk domain: customers, tickets, threads. Functions take a scoped connection."""
