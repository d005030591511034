"""host.devices"""
