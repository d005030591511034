"""host.report"""
