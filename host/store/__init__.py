"""host.store"""
