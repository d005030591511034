"""host.bench"""
